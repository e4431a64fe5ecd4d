# %% [markdown]
# # Lab 04 — The direct exchange
#
# **Learning goals**
#
# - declare a **direct exchange** and bind queues to it with binding keys;
# - see that a direct exchange delivers a message to every queue whose binding key
#   **equals** the routing key — exactly, case included — and to no other;
# - bind one queue with several keys, and one key to several queues;
# - recognise the default exchange as a direct exchange that binds every queue by its name;
# - have the broker return a message that no queue receives (`mandatory`), and keep it
#   instead of losing it;
# - predict where messages go, then let the broker prove you right or wrong.
#
# **Estimated time:** 35 minutes.
#
# The lecture's example is a **stock market**: prices are published with the ticker as the
# routing key, and each trader's queue receives the tickers it was bound to.

# %%
import pika

import mqkit
from mqkit.grading import self_check
from mqkit.grading.predict import predict_then_publish

endpoints = mqkit.start_brokers()
# Like pika.BlockingConnection (lab 01), but it survives a notebook left idle for a while.
connection = mqkit.notebook_connection(endpoints, name="lab04")
channel = connection.channel()
# Publisher confirms: basic_publish returns once the broker has routed the message.
channel.confirm_delivery()

# Start clean: remove what a previous run of this lab left behind.
for name in ("lab04.AAPL", "lab04.MSFT", "lab04.GOOG", "lab04.portfolio", "lab04.unrouted"):
    channel.queue_delete(queue=name)
channel.exchange_delete(exchange="lab04.stocks")


def drain(queue):
    """Take the messages out of a queue (at most 100) and return their bodies as text."""
    bodies = []
    for _ in range(100):
        method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body.decode())
    return bodies

# %% [markdown]
# ## A queue per ticker
#
# A **direct exchange** compares the message's routing key with each binding's key and
# delivers the message to every queue whose key is equal. We declare the exchange, a durable
# queue per ticker, and bind each queue with its ticker as the binding key.

# %%
channel.exchange_declare(exchange='lab04.stocks', exchange_type='direct', durable=True)
for ticker in ('AAPL', 'MSFT', 'GOOG'):
    channel.queue_declare(queue=f'lab04.{ticker}', durable=True)
    channel.queue_bind(queue=f'lab04.{ticker}', exchange='lab04.stocks', routing_key=ticker)

# %% [markdown]
# Now the market publishes prices, with the ticker as the routing key:

# %%
prices = [('AAPL', '189.50'), ('MSFT', '411.20'), ('AAPL', '190.10'), ('GOOG', '141.80')]
for ticker, price in prices:
    channel.basic_publish(exchange='lab04.stocks', routing_key=ticker,
                          body=f'{ticker} {price}')

for ticker in ('AAPL', 'MSFT', 'GOOG'):
    print(f'lab04.{ticker}:', drain(f'lab04.{ticker}'))
# Expected output:
# lab04.AAPL: ['AAPL 189.50', 'AAPL 190.10']
# lab04.MSFT: ['MSFT 411.20']
# lab04.GOOG: ['GOOG 141.80']

# %% [markdown]
# ## Watch it live
#
# The inbox consumes the three ticker queues in the background; the publisher sends to the
# exchange `lab04.stocks`. Change the routing key in the form (`MSFT`, `GOOG`, `TSLA`, `aapl`)
# and publish: which queue gets it? A key nobody is bound to is reported as *not delivered*.

# %%
from mqkit.widgets import Publisher, QueueInbox, RoutingExplainer, TopologyView

inbox = QueueInbox(['lab04.AAPL', 'lab04.MSFT', 'lab04.GOOG'], endpoints)
inbox

# %%
publisher = Publisher(endpoints, exchange='lab04.stocks', routing_key='AAPL', body='AAPL 191.00')
publisher

# %% [markdown]
# Code can publish too; the inbox counts what arrives (waiting at most five seconds):

# %%
for ticker in ('AAPL', 'GOOG', 'TSLA'):
    print(publisher.model.publish(exchange='lab04.stocks', routing_key=ticker,
                                  body=f'{ticker} 100.00', mandatory=True))
inbox.model.wait_for(2, timeout=5)
print("the inbox received", inbox.model.count, "messages")
# Expected output:
# published to exchange 'lab04.stocks', routing key 'AAPL' (confirmed by the broker)
# published to exchange 'lab04.stocks', routing key 'GOOG' (confirmed by the broker)
# NOT DELIVERED to exchange 'lab04.stocks', routing key 'TSLA': unroutable: no queue is bound with a matching key, so the broker returned it (mandatory)
# the inbox received 2 messages

# %% [markdown]
# The topology, read from the broker: the exchange on the left, its bindings (labelled with
# their keys), the queues on the right. *Refresh* redraws it.

# %%
TopologyView(endpoints, prefix="lab04.")

# %% [markdown]
# ## Why did it go there? The routing explainer
#
# The explainer reads the exchange's bindings from the broker and judges each one for a
# routing key you type. Try `AAPL`, `aapl`, `AAPL ` (with a space) and `TSLA`.

# %%
RoutingExplainer(endpoints, 'lab04.stocks', routing_key='aapl')

# %% [markdown]
# The same explanation as text: direct routing is exact string equality, case included.

# %%
from mqkit.widgets import RoutingExplainerModel

print(RoutingExplainerModel.from_broker(endpoints, 'lab04.stocks').text('aapl'))
# Expected output:
# lab04.stocks (direct), routing key 'aapl':
# ✘ lab04.AAPL  binding key 'AAPL'  the binding key `AAPL` is not the routing key `aapl`: direct needs exact equality (case matters)
# ✘ lab04.GOOG  binding key 'GOOG'  the binding key `GOOG` is not the routing key `aapl`: direct needs exact equality
# ✘ lab04.MSFT  binding key 'MSFT'  the binding key `MSFT` is not the routing key `aapl`: direct needs exact equality
# → unroutable: no binding matches (the broker drops the message, or returns it when published with mandatory=True)

# %% [markdown]
# ### Exercise: a portfolio queue with several bindings
#
# A trader follows Apple **and** Microsoft in one queue. A queue may be bound to the same
# exchange several times, once per key. Bind `lab04.portfolio` to `lab04.stocks` with the
# keys `AAPL` and `MSFT`. (`lab04.AAPL` keeps its own binding: one key may lead to several
# queues, and each gets its own copy.)

# %%
channel.queue_declare(queue='lab04.portfolio', durable=True)
### BEGIN SOLUTION
channel.queue_bind(queue='lab04.portfolio', exchange='lab04.stocks', routing_key='AAPL')
channel.queue_bind(queue='lab04.portfolio', exchange='lab04.stocks', routing_key='MSFT')
### END SOLUTION

# %% [markdown]
# The self-check publishes probe prices to `lab04.stocks` and looks where they land (it
# takes its probes out again): `AAPL` and `MSFT` must reach the portfolio; `GOOG`, `aapl`
# and the empty key must not.

# %%
self_check("04.ticker-bindings", endpoints)
# Expected result (solution):
# ✔ passed  04.ticker-bindings: queue 'lab04.portfolio' receives AAPL and MSFT prices, and nothing else
# Expected result (student):
# ✘ not yet  04.ticker-bindings: queue 'lab04.portfolio' did not receive a message with routing key 'AAPL' Hint: A direct exchange delivers a message to the queues bound with exactly its routing key: how can one queue receive two different keys? (more: hint=2)

# %% [markdown]
# ### Exercise: predict, then publish
#
# For each routing key below, write the set of queues that will receive the message (an
# empty `set()` for none). The next cell publishes the messages to `lab04.stocks`, looks in
# every bound queue, and marks each cell of the table ✔ (you were right) or ✘.

# %%
prediction = {
    'AAPL': set(),
    'MSFT': set(),
    'GOOG': set(),
    'TSLA': set(),
}
### BEGIN SOLUTION
prediction = {
    'AAPL': {'lab04.AAPL', 'lab04.portfolio'},
    'MSFT': {'lab04.MSFT', 'lab04.portfolio'},
    'GOOG': {'lab04.GOOG'},
    'TSLA': set(),
}
### END SOLUTION

# %%
predict_then_publish(endpoints, 'lab04.stocks', prediction)
# Expected result (solution):
# prediction vs broker, exchange 'lab04.stocks'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message  lab04.AAPL        lab04.GOOG        lab04.MSFT        lab04.portfolio
# AAPL     yes · you: yes ✔  no · you: no ✔    no · you: no ✔    yes · you: yes ✔
# MSFT     no · you: no ✔    no · you: no ✔    yes · you: yes ✔  yes · you: yes ✔
# GOOG     no · you: no ✔    yes · you: yes ✔  no · you: no ✔    no · you: no ✔
# TSLA     no · you: no ✔    no · you: no ✔    no · you: no ✔    no · you: no ✔  (returned: no queue matched)
# 4 of 4 messages predicted right.
# Expected result (student):
# prediction vs broker, exchange 'lab04.stocks'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message  lab04.AAPL       lab04.GOOG       lab04.MSFT
# AAPL     yes · you: no ✘  no · you: no ✔   no · you: no ✔
# MSFT     no · you: no ✔   no · you: no ✔   yes · you: no ✘
# GOOG     no · you: no ✔   yes · you: no ✘  no · you: no ✔
# TSLA     no · you: no ✔   no · you: no ✔   no · you: no ✔  (returned: no queue matched)
# ✘ 'AAPL': the broker delivered it to lab04.AAPL; you predicted no queue
# ✘ 'MSFT': the broker delivered it to lab04.MSFT; you predicted no queue
# ✘ 'GOOG': the broker delivered it to lab04.GOOG; you predicted no queue
# 1 of 4 messages predicted right.

# %% [markdown]
# ## The default exchange is a direct exchange
#
# Lab 03 published with `exchange=''`. That **default exchange** is a direct exchange to
# which the broker binds every queue automatically, with the queue's name as the binding
# key. So the routing key must be the queue's *name*, not a ticker:

# %%
predict_then_publish(endpoints, '', {'lab04.GOOG': {'lab04.GOOG'}, 'GOOG': set()},
                     queues=['lab04.GOOG'])
# Expected result:
# prediction vs broker, exchange '' (the default exchange)
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message     lab04.GOOG
# lab04.GOOG  yes · you: yes ✔
# GOOG        no · you: no ✔  (returned: no queue matched)
# 2 of 2 messages predicted right.

# %% [markdown]
# ### Exercise: no price gets lost
#
# `TSLA` went nowhere: no queue is bound with that key, so the direct exchange dropped the
# price, and the publisher never knew. A trading system should keep such prices, so someone
# can look at them. Two tools help:
#
# - Published with `mandatory=True`, a message that reaches no queue is **returned** by the
#   broker. On a channel with publisher confirms (ours has them), pika's `basic_publish` then
#   raises `pika.exceptions.UnroutableError`.
# - The default exchange delivers to any queue by its name.

# %% [markdown]
# Complete `publish_or_park(ticker, price)`. It publishes the price to `lab04.stocks` with
# the ticker as the routing key and the body `'<ticker> <price>'`, as the market did above,
# and asks the broker to return it if no queue receives it. A returned price goes, with the
# same body, into the durable queue `lab04.unrouted` (declared for you), and the function
# returns `True`; a price that reached a queue returns `False`.

# %%
channel.queue_declare(queue='lab04.unrouted', durable=True)


def publish_or_park(ticker, price):
    """Publish a price to lab04.stocks; return True when it had to be parked."""
    ### BEGIN SOLUTION
    body = f'{ticker} {price}'
    try:
        channel.basic_publish(exchange='lab04.stocks', routing_key=ticker,
                              body=body, mandatory=True)
    except pika.exceptions.UnroutableError:
        channel.basic_publish(exchange='', routing_key='lab04.unrouted', body=body)
        return True
    return False
    ### END SOLUTION

# %% [markdown]
# The market publishes a batch with your function; the self-check then looks into
# `lab04.unrouted` (leaving its messages there): the prices of `TSLA` and `NVDA` must be
# parked, and no price that a queue received.

# %%
batch = [('AAPL', '191.20'), ('TSLA', '248.50'), ('MSFT', '412.00'), ('NVDA', '880.00'),
         ('GOOG', '142.10')]
parked = [ticker for ticker, price in batch if publish_or_park(ticker, price)]
print('parked:', parked)
# Expected output (solution):
# parked: ['TSLA', 'NVDA']
# Expected output (student):
# parked: []

# %%
self_check("04.unroutable-parked", endpoints)
# Expected result (solution):
# ✔ passed  04.unroutable-parked: queue 'lab04.unrouted' holds the prices for TSLA and NVDA, which no queue was bound to receive, and no other
# Expected result (student):
# ✘ not yet  04.unroutable-parked: queue 'lab04.unrouted' holds no price for TSLA, which no queue is bound to receive Hint: A direct exchange silently drops a price whose key no queue is bound with, unless the publisher asks the broker to return it: catch that return and keep the price in the parking queue. (more: hint=2)

# %% [markdown]
# ## Summary
#
# - A **direct exchange** delivers a message to every queue bound with a key *equal* to
#   the routing key: exact, case-sensitive; no match means the message is dropped (or
#   returned, with `mandatory=True`).
# - A queue can have several bindings (`lab04.portfolio`: `AAPL` and `MSFT`), and several
#   queues can share a key — each gets its own copy.
# - The default exchange `''` is a direct exchange where every queue is bound by its name.
# - `mandatory=True` makes the broker return a message that no queue receives (pika raises
#   `UnroutableError` on a confirming channel): the publisher can keep it instead of losing
#   it.
# - `RoutingExplainer` shows why each binding matched or not; `predict_then_publish`
#   checks your reasoning against the real broker.
#
# Next: **lab 05**, the topic exchange, where binding keys become patterns.
