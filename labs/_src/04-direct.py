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
# The lecture's example is a **stock market** with the stocks **Stock A** to **Stock E**: each
# price is published with the stock's name as the routing key, and each queue receives the
# stocks it was bound to.

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
STOCKS = ['Stock A', 'Stock B', 'Stock C', 'Stock D', 'Stock E']
QUEUES = {stock: 'lab04.stock-' + stock[-1] for stock in STOCKS}  # 'Stock A': 'lab04.stock-A'
for name in [*QUEUES.values(), "lab04.portfolio", "lab04.unrouted"]:
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
# ## A queue per stock
#
# A **direct exchange** compares the message's routing key with each binding's key and
# delivers the message to every queue whose key is equal. We declare the exchange, a durable
# queue per stock, and bind each queue with the stock's name as the binding key.

# %%
channel.exchange_declare(exchange='lab04.stocks', exchange_type='direct', durable=True)
for stock in STOCKS:
    channel.queue_declare(queue=QUEUES[stock], durable=True)
    channel.queue_bind(queue=QUEUES[stock], exchange='lab04.stocks', routing_key=stock)

# %% [markdown]
# Now the market publishes prices, with the stock's name as the routing key:

# %%
prices = [('Stock A', '189.50'), ('Stock B', '411.20'), ('Stock A', '190.10'),
          ('Stock C', '141.80'), ('Stock E', '57.30')]
for stock, price in prices:
    channel.basic_publish(exchange='lab04.stocks', routing_key=stock,
                          body=f'{stock} {price}')

for stock in STOCKS:
    print(f'{QUEUES[stock]}:', drain(QUEUES[stock]))
# Expected output:
# lab04.stock-A: ['Stock A 189.50', 'Stock A 190.10']
# lab04.stock-B: ['Stock B 411.20']
# lab04.stock-C: ['Stock C 141.80']
# lab04.stock-D: []
# lab04.stock-E: ['Stock E 57.30']

# %% [markdown]
# A trader who follows Stock A runs a consumer on its queue. This is the lecture's consumer,
# callback and all; `call_later` stops it after one second so that the cell returns (lab 03).

# %%
channel.basic_publish(exchange='lab04.stocks', routing_key='Stock A', body='Stock A 190.40')


def callback(ch, method, properties, body):
    print("Received message:", body)


channel.basic_consume(queue='lab04.stock-A', on_message_callback=callback, auto_ack=True)
connection.call_later(1, channel.stop_consuming)
channel.start_consuming()
# Expected output:
# Received message: b'Stock A 190.40'

# %% [markdown]
# ## Watch it live
#
# The inbox consumes the five stock queues in the background; the publisher sends to the
# exchange `lab04.stocks`. Change the routing key in the form (`Stock B`, `Stock E`,
# `Stock F`, `stock a`) and publish: which queue gets it? A key nobody is bound to is
# reported as *not delivered*.

# %%
from mqkit.widgets import Publisher, QueueInbox, RoutingExplainer, TopologyView

inbox = QueueInbox(list(QUEUES.values()), endpoints)
inbox

# %%
publisher = Publisher(endpoints, exchange='lab04.stocks', routing_key='Stock A',
                      body='Stock A 191.00')
publisher

# %% [markdown]
# Code can publish too; the inbox counts what arrives (waiting at most five seconds):

# %%
for stock in ('Stock A', 'Stock C', 'Stock F'):
    print(publisher.model.publish(exchange='lab04.stocks', routing_key=stock,
                                  body=f'{stock} 100.00', mandatory=True))
inbox.model.wait_for(2, timeout=5)
print("the inbox received", inbox.model.count, "messages")
# Expected output:
# published to exchange 'lab04.stocks', routing key 'Stock A' (confirmed by the broker)
# published to exchange 'lab04.stocks', routing key 'Stock C' (confirmed by the broker)
# NOT DELIVERED to exchange 'lab04.stocks', routing key 'Stock F': unroutable: no queue is bound with a matching key, so the broker returned it (mandatory)
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
# routing key you type. Try `Stock A`, `stock a`, `Stock A ` (with a space at the end) and
# `Stock F`.

# %%
RoutingExplainer(endpoints, 'lab04.stocks', routing_key='stock a')

# %% [markdown]
# The same explanation as text: direct routing is exact string equality, case included.

# %%
from mqkit.widgets import RoutingExplainerModel

print(RoutingExplainerModel.from_broker(endpoints, 'lab04.stocks').text('stock a'))
# Expected output:
# lab04.stocks (direct), routing key 'stock a':
# ✘ lab04.stock-A  binding key 'Stock A'  the binding key `Stock A` is not the routing key `stock a`: direct needs exact equality (case matters)
# ✘ lab04.stock-B  binding key 'Stock B'  the binding key `Stock B` is not the routing key `stock a`: direct needs exact equality
# ✘ lab04.stock-C  binding key 'Stock C'  the binding key `Stock C` is not the routing key `stock a`: direct needs exact equality
# ✘ lab04.stock-D  binding key 'Stock D'  the binding key `Stock D` is not the routing key `stock a`: direct needs exact equality
# ✘ lab04.stock-E  binding key 'Stock E'  the binding key `Stock E` is not the routing key `stock a`: direct needs exact equality
# → unroutable: no binding matches (the broker drops the message, or returns it when published with mandatory=True)

# %% [markdown]
# ### Exercise: a portfolio queue with several bindings
#
# A trader follows Stock A **and** Stock B in one queue. A queue may be bound to the same
# exchange several times, once per key. Bind `lab04.portfolio` to `lab04.stocks` with the
# keys `Stock A` and `Stock B`. (`lab04.stock-A` keeps its own binding: one key may lead to
# several queues, and each gets its own copy.)

# %%
channel.queue_declare(queue='lab04.portfolio', durable=True)
### BEGIN SOLUTION
channel.queue_bind(queue='lab04.portfolio', exchange='lab04.stocks', routing_key='Stock A')
channel.queue_bind(queue='lab04.portfolio', exchange='lab04.stocks', routing_key='Stock B')
### END SOLUTION

# %% [markdown]
# The self-check publishes probe prices to `lab04.stocks` and looks where they land (it
# takes its probes out again): `Stock A` and `Stock B` must reach the portfolio; `Stock C`,
# `stock a` and the empty key must not.

# %%
self_check("04.ticker-bindings", endpoints)
# Expected result (solution):
# ✔ passed  04.ticker-bindings: queue 'lab04.portfolio' receives Stock A and Stock B prices, and nothing else
# Expected result (student):
# ✘ not yet  04.ticker-bindings: queue 'lab04.portfolio' did not receive a message with routing key 'Stock A' Hint: A direct exchange delivers a message to the queues bound with exactly its routing key: how can one queue receive two different keys? (more: hint=2)

# %% [markdown]
# ### Exercise: predict, then publish
#
# For each routing key below, write the set of queues that will receive the message (an
# empty `set()` for none). The next cell publishes the messages to `lab04.stocks`, looks in
# every bound queue, and marks each cell of the table ✔ (you were right) or ✘.

# %%
prediction = {
    'Stock A': set(),
    'Stock B': set(),
    'Stock C': set(),
    'Stock F': set(),
}
### BEGIN SOLUTION
prediction = {
    'Stock A': {'lab04.stock-A', 'lab04.portfolio'},
    'Stock B': {'lab04.stock-B', 'lab04.portfolio'},
    'Stock C': {'lab04.stock-C'},
    'Stock F': set(),
}
### END SOLUTION

# %%
predict_then_publish(endpoints, 'lab04.stocks', prediction)
# Expected result (solution):
# prediction vs broker, exchange 'lab04.stocks'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message  lab04.portfolio   lab04.stock-A     lab04.stock-B     lab04.stock-C     lab04.stock-D   lab04.stock-E
# Stock A  yes · you: yes ✔  yes · you: yes ✔  no · you: no ✔    no · you: no ✔    no · you: no ✔  no · you: no ✔
# Stock B  yes · you: yes ✔  no · you: no ✔    yes · you: yes ✔  no · you: no ✔    no · you: no ✔  no · you: no ✔
# Stock C  no · you: no ✔    no · you: no ✔    no · you: no ✔    yes · you: yes ✔  no · you: no ✔  no · you: no ✔
# Stock F  no · you: no ✔    no · you: no ✔    no · you: no ✔    no · you: no ✔    no · you: no ✔  no · you: no ✔  (returned: no queue matched)
# 4 of 4 messages predicted right.
# Expected result (student):
# prediction vs broker, exchange 'lab04.stocks'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message  lab04.stock-A    lab04.stock-B    lab04.stock-C    lab04.stock-D   lab04.stock-E
# Stock A  yes · you: no ✘  no · you: no ✔   no · you: no ✔   no · you: no ✔  no · you: no ✔
# Stock B  no · you: no ✔   yes · you: no ✘  no · you: no ✔   no · you: no ✔  no · you: no ✔
# Stock C  no · you: no ✔   no · you: no ✔   yes · you: no ✘  no · you: no ✔  no · you: no ✔
# Stock F  no · you: no ✔   no · you: no ✔   no · you: no ✔   no · you: no ✔  no · you: no ✔  (returned: no queue matched)
# ✘ 'Stock A': the broker delivered it to lab04.stock-A; you predicted no queue
# ✘ 'Stock B': the broker delivered it to lab04.stock-B; you predicted no queue
# ✘ 'Stock C': the broker delivered it to lab04.stock-C; you predicted no queue
# 1 of 4 messages predicted right.

# %% [markdown]
# ## The default exchange is a direct exchange
#
# Lab 03 published with `exchange=''`. That **default exchange** is a direct exchange to
# which the broker binds every queue automatically, with the queue's name as the binding
# key. So the routing key must be the queue's *name*, not a stock's:

# %%
predict_then_publish(endpoints, '', {'lab04.stock-C': {'lab04.stock-C'}, 'Stock C': set()},
                     queues=['lab04.stock-C'])
# Expected result:
# prediction vs broker, exchange '' (the default exchange)
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message        lab04.stock-C
# lab04.stock-C  yes · you: yes ✔
# Stock C        no · you: no ✔  (returned: no queue matched)
# 2 of 2 messages predicted right.

# %% [markdown]
# ### Exercise: no price gets lost
#
# `Stock F` went nowhere: no queue is bound with that key, so the direct exchange dropped the
# price, and the publisher never knew. A trading system should keep such prices, so someone
# can look at them. Two tools help:
#
# - Published with `mandatory=True`, a message that reaches no queue is **returned** by the
#   broker. On a channel with publisher confirms (ours has them), pika's `basic_publish` then
#   raises `pika.exceptions.UnroutableError`.
# - The default exchange delivers to any queue by its name.

# %% [markdown]
# Complete `publish_or_park(stock, price)`. It publishes the price to `lab04.stocks` with
# the stock as the routing key and the body `'<stock> <price>'`, as the market did above,
# and asks the broker to return it if no queue receives it. A returned price goes, with the
# same body, into the durable queue `lab04.unrouted` (declared for you), and the function
# returns `True`; a price that reached a queue returns `False`.

# %%
channel.queue_declare(queue='lab04.unrouted', durable=True)


def publish_or_park(stock, price):
    """Publish a price to lab04.stocks; return True when it had to be parked."""
    ### BEGIN SOLUTION
    body = f'{stock} {price}'
    try:
        channel.basic_publish(exchange='lab04.stocks', routing_key=stock,
                              body=body, mandatory=True)
    except pika.exceptions.UnroutableError:
        channel.basic_publish(exchange='', routing_key='lab04.unrouted', body=body)
        return True
    return False
    ### END SOLUTION

# %% [markdown]
# The market publishes a batch with your function; the self-check then looks into
# `lab04.unrouted` (leaving its messages there): the prices of `Stock F` and `Stock G` must be
# parked, and no price that a queue received.

# %%
batch = [('Stock A', '191.20'), ('Stock F', '248.50'), ('Stock B', '412.00'),
         ('Stock G', '880.00'), ('Stock C', '142.10')]
parked = [stock for stock, price in batch if publish_or_park(stock, price)]
print('parked:', parked)
# Expected output (solution):
# parked: ['Stock F', 'Stock G']
# Expected output (student):
# parked: []

# %%
self_check("04.unroutable-parked", endpoints)
# Expected result (solution):
# ✔ passed  04.unroutable-parked: queue 'lab04.unrouted' holds the prices for Stock F and Stock G, which no queue was bound to receive, and no other
# Expected result (student):
# ✘ not yet  04.unroutable-parked: queue 'lab04.unrouted' holds no price for Stock F, which no queue is bound to receive Hint: A direct exchange silently drops a price whose key no queue is bound with, unless the publisher asks the broker to return it: catch that return and keep the price in the parking queue. (more: hint=2)

# %% [markdown]
# ## Summary
#
# - A **direct exchange** delivers a message to every queue bound with a key *equal* to
#   the routing key: exact, case-sensitive; no match means the message is dropped (or
#   returned, with `mandatory=True`).
# - A queue can have several bindings (`lab04.portfolio`: `Stock A` and `Stock B`), and several
#   queues can share a key — each gets its own copy.
# - The default exchange `''` is a direct exchange where every queue is bound by its name.
# - `mandatory=True` makes the broker return a message that no queue receives (pika raises
#   `UnroutableError` on a confirming channel): the publisher can keep it instead of losing
#   it.
# - `RoutingExplainer` shows why each binding matched or not; `predict_then_publish`
#   checks your reasoning against the real broker.
#
# Next: **lab 05**, the topic exchange, where binding keys become patterns.
