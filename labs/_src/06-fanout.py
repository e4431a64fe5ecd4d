# %% [markdown]
# # Lab 06 — The fanout exchange
#
# **Learning goals**
#
# - declare a **fanout exchange** and see that every bound queue gets a copy of every
#   message — the routing key is ignored;
# - give subscribers that come and go **temporary exclusive queues** (server-named, gone
#   when their connection closes), and see that a message is not kept for a subscriber that
#   was not there;
# - bind an **exchange to an exchange**, so one exchange feeds another — or gathers
#   what several others send;
# - predict where messages go, then let the broker prove you right or wrong.
#
# **Estimated time:** 35 minutes.
#
# The lecture's example is a **notification system**: every notification goes to all users
# A, B, C and D, each with a queue of their own.

# %%
import mqkit
from mqkit.grading import self_check
from mqkit.grading.predict import predict_then_publish
from mqkit.widgets import RoutingExplainerModel

endpoints = mqkit.start_brokers()
connection = mqkit.notebook_connection(endpoints, name="lab06")
channel = connection.channel()
channel.confirm_delivery()

USERS = ['A', 'B', 'C', 'D']
# Start clean: remove what a previous run of this lab left behind.
for name in ([f"lab06.user-{user}" for user in USERS]
             + ["lab06.user-E", "lab06.audit-log", "lab06.push-ios", "lab06.push-android"]):
    channel.queue_delete(queue=name)
for name in ("lab06.notifications", "lab06.audit", "lab06.promotions", "lab06.mobile"):
    channel.exchange_delete(exchange=name)


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
# ## A queue per user
#
# A fanout exchange copies each message to **every** queue bound to it. A binding needs no
# key (and any key given is ignored).

# %%
channel.exchange_declare(exchange='lab06.notifications', exchange_type='fanout', durable=True)
for user in USERS:
    channel.queue_declare(queue=f'lab06.user-{user}', durable=True)
    channel.queue_bind(queue=f'lab06.user-{user}', exchange='lab06.notifications')

# %% [markdown]
# Two notifications with different routing keys — they make no difference:

# %%
channel.basic_publish(exchange='lab06.notifications', routing_key='',
                      body='System maintenance tonight')
channel.basic_publish(exchange='lab06.notifications', routing_key='user-A',
                      body='New feature released')
for user in USERS:
    print(f'lab06.user-{user}:', drain(f'lab06.user-{user}'))
# Expected output:
# lab06.user-A: ['System maintenance tonight', 'New feature released']
# lab06.user-B: ['System maintenance tonight', 'New feature released']
# lab06.user-C: ['System maintenance tonight', 'New feature released']
# lab06.user-D: ['System maintenance tonight', 'New feature released']

# %% [markdown]
# ## Watch it live
#
# One message published, four copies in the inbox: one per user queue.

# %%
from mqkit.widgets import Publisher, QueueInbox, RoutingExplainer, TopologyView

inbox = QueueInbox([f'lab06.user-{user}' for user in USERS], endpoints)
inbox

# %%
publisher = Publisher(endpoints, exchange='lab06.notifications', routing_key='whatever',
                      body='Hello, everybody')
publisher

# %%
publisher.model.publish(exchange='lab06.notifications', routing_key='whatever',
                        body='Hello, everybody')
inbox.model.wait_for(4, timeout=5)
print("one message published, the inbox received", inbox.model.count)
# Expected output:
# one message published, the inbox received 4

# %%
TopologyView(endpoints, prefix="lab06.")

# %% [markdown]
# ## Subscribers that come and go: temporary exclusive queues
#
# A browser tab that shows notifications only while it is open needs no durable queue. It
# declares a queue with an empty name — the broker picks a unique name `amq.gen-…` — and
# `exclusive=True`: only this connection may use it, and it disappears when the connection
# closes. Re-running the cell cannot collide with an old queue. When the tab's connection
# drops, only the broker notices: it deletes the queue and its binding, and the publisher,
# which is not told, simply reaches one queue fewer.

# %%
result = channel.queue_declare(queue='', exclusive=True)
tab = result.method.queue
channel.queue_bind(queue=tab, exchange='lab06.notifications')
print("temporary queue:", tab)
channel.basic_publish(exchange='lab06.notifications', routing_key='', body='Flash sale!')
print("the tab got:", drain(tab))
# Expected output:
# temporary queue: amq.gen-NAME
# the tab got: ['Flash sale!']

# %% [markdown]
# A subscriber that arrives later gets only what is published after it bound its queue:
# the exchange keeps nothing, it only copies into the queues that exist right now.

# %%
late_tab = channel.queue_declare(queue='', exclusive=True).method.queue
channel.queue_bind(queue=late_tab, exchange='lab06.notifications')
got = drain(late_tab)
channel.queue_delete(queue=late_tab)  # the tab closes
print("the late tab got:", got)
# Expected output:
# the late tab got: []

# %% [markdown]
# ## An exchange bound to an exchange
#
# Exchanges can be bound to exchanges. Here an audit exchange `lab06.audit` receives
# everything `lab06.notifications` sends, and delivers it to its own queue — the
# notification system does not need to know the audit exists.

# %%
channel.exchange_declare(exchange='lab06.audit', exchange_type='fanout', durable=True)
channel.exchange_bind(destination='lab06.audit', source='lab06.notifications')
channel.queue_declare(queue='lab06.audit-log', durable=True)
channel.queue_bind(queue='lab06.audit-log', exchange='lab06.audit')

channel.basic_publish(exchange='lab06.notifications', routing_key='', body='Password changed')
for queue in [tab] + [f'lab06.user-{user}' for user in USERS]:
    drain(queue)  # the users got it too; empty their queues for later
print("audit log:", drain('lab06.audit-log'))
print(RoutingExplainerModel.from_broker(endpoints, 'lab06.notifications').text('x')
      .replace(tab, 'amq.gen-TAB'))
# Expected output:
# audit log: ['Password changed']
# lab06.notifications (fanout), routing key 'x':
# ✔ amq.gen-TAB  fanout binding  fanout ignores the routing key: every bound queue gets a copy
# ✔ exchange lab06.audit  fanout binding  fanout ignores the routing key: every bound queue gets a copy
# ✔ lab06.user-A  fanout binding  fanout ignores the routing key: every bound queue gets a copy
# ✔ lab06.user-B  fanout binding  fanout ignores the routing key: every bound queue gets a copy
# ✔ lab06.user-C  fanout binding  fanout ignores the routing key: every bound queue gets a copy
# ✔ lab06.user-D  fanout binding  fanout ignores the routing key: every bound queue gets a copy
# → delivered to: amq.gen-TAB, lab06.audit, lab06.user-A, lab06.user-B, lab06.user-C, lab06.user-D

# %% [markdown]
# The explainer, live (the routing key changes nothing here):

# %%
RoutingExplainer(endpoints, 'lab06.notifications', routing_key='anything')

# %% [markdown]
# ### Exercise: a new user
#
# User E signs up. Give E a durable queue `lab06.user-E` that receives every notification.

# %%
channel.queue_declare(queue='lab06.user-E', durable=True)
### BEGIN SOLUTION
channel.queue_bind(queue='lab06.user-E', exchange='lab06.notifications')
### END SOLUTION

# %%
self_check("06.new-subscriber", endpoints)
# Expected result (solution):
# ✔ passed  06.new-subscriber: queue 'lab06.user-E' receives every notification, whatever its routing key, and nothing else
# Expected result (student):
# ✘ not yet  06.new-subscriber: queue 'lab06.user-E' did not receive a message with routing key 'alert' Hint: A fanout exchange copies every message to each queue bound to it: is user E's queue bound yet? (more: hint=2)

# %% [markdown]
# ### Exercise: predict, then publish
#
# The browser tab is still open (its queue is in the variable `tab`). Which queues receive
# a notification published with the routing key `news`? Write the set — queue names, and
# `tab` for the tab's queue. The tab's queue is exclusive, so the kit looks into it through
# *your* connection (`connection=connection`).

# %%
prediction = {'news': set()}
### BEGIN SOLUTION
prediction = {'news': {tab, 'lab06.audit-log', 'lab06.user-A', 'lab06.user-B',
                       'lab06.user-C', 'lab06.user-D', 'lab06.user-E'}}
### END SOLUTION

# %%
predict_then_publish(endpoints, 'lab06.notifications', prediction, connection=connection)
# Expected result (solution):
# prediction vs broker, exchange 'lab06.notifications'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message  amq.gen-AAAAAAAAAAAAAAAAAAAAAA  lab06.audit-log   lab06.user-A      lab06.user-B      lab06.user-C      lab06.user-D      lab06.user-E
# news     yes · you: yes ✔                yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔
# 1 of 1 messages predicted right.
# Expected result (student):
# prediction vs broker, exchange 'lab06.notifications'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message  amq.gen-AAAAAAAAAAAAAAAAAAAAAA  lab06.audit-log  lab06.user-A     lab06.user-B     lab06.user-C     lab06.user-D
# news     yes · you: no ✘                 yes · you: no ✘  yes · you: no ✘  yes · you: no ✘  yes · you: no ✘  yes · you: no ✘
# ✘ 'news': the broker delivered it to amq.gen-AAAAAAAAAAAAAAAAAAAAAA, lab06.audit-log, lab06.user-A, lab06.user-B, lab06.user-C, lab06.user-D; you predicted no queue
# 0 of 1 messages predicted right.

# %% [markdown]
# ### Exercise: a mobile push service
#
# The company now sends push messages to phones. The push service must get **every
# notification**, and also **every promotion**, which marketing publishes on a fanout
# exchange of its own, `lab06.promotions` (declared in the next cell). The users' queues must
# not get the promotions, and the existing bindings stay as they are.
#
# Build:
#
# - a durable fanout exchange `lab06.mobile` that receives everything that
#   `lab06.notifications` and `lab06.promotions` send;
# - two durable queues, `lab06.push-ios` and `lab06.push-android`, each with a copy of
#   everything `lab06.mobile` receives.

# %%
channel.exchange_declare(exchange='lab06.promotions', exchange_type='fanout', durable=True)
### BEGIN SOLUTION
channel.exchange_declare(exchange='lab06.mobile', exchange_type='fanout', durable=True)
for source in ('lab06.notifications', 'lab06.promotions'):
    channel.exchange_bind(destination='lab06.mobile', source=source)
for queue in ('lab06.push-ios', 'lab06.push-android'):
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_bind(queue=queue, exchange='lab06.mobile')
### END SOLUTION

# %% [markdown]
# The self-check publishes probe notifications and promotions, with and without a routing
# key, and looks where each lands: both push queues must get all of them, `lab06.user-A`
# only the notifications.

# %%
self_check("06.mobile-push", endpoints)
# Expected result (solution):
# ✔ passed  06.mobile-push: both push queues get every notification and every promotion, the users only the notifications, and no queue anything else
# Expected result (student):
# ✘ not yet  06.mobile-push: there is no queue 'lab06.push-ios' Hint: An exchange can be bound to other exchanges, and to more than one: the push queues must get every notification and every promotion, the users only the notifications. (more: hint=2)

# %% [markdown]
# ## Summary
#
# - A **fanout exchange** copies every message to every bound queue; the routing key is
#   ignored.
# - Subscribers that come and go use **server-named exclusive queues**
#   (`queue_declare(queue='', exclusive=True)`): unique names, deleted with their
#   connection. A message is copied only to the queues that exist when it is published.
# - `exchange_bind(destination=..., source=...)` lets one exchange feed another — here an
#   audit trail that the publishers need not know about. An exchange bound to several
#   sources gathers what each of them sends (the mobile push service).
#
# Next: **lab 07**, the headers exchange, which routes on message headers instead.
