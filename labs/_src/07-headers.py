# %% [markdown]
# # Lab 07 — The headers exchange
#
# **Learning goals**
#
# - route on **message headers** instead of the routing key, with a headers exchange;
# - choose between `x-match: all` (every header must match) and `x-match: any` (one is
#   enough), and know what `all-with-x` / `any-with-x` change;
# - see why the routing key is ignored, and that header values are compared with their type;
# - predict where messages go, then let the broker prove you right or wrong;
# - build the lecture's depots: New York / Los Angeles × air / sea.
#
# **Estimated time:** 35 minutes.
#
# The lecture's example is **logistics**: each parcel carries the headers `destination`
# and `delivery_method`, and depots subscribe to the parcels they handle.

# %%
import pika

import mqkit
from mqkit.grading import self_check
from mqkit.grading.predict import predict_then_publish
from mqkit.routing import Binding
from mqkit.widgets import RoutingExplainerModel

endpoints = mqkit.start_brokers()
connection = mqkit.notebook_connection(endpoints, name="lab07")
channel = connection.channel()
channel.confirm_delivery()

QUEUES = ['lab07.berlin-depot', 'lab07.express-desk', 'lab07.tenant-acme']
# Start clean: remove what a previous run of this lab left behind.
DEPOTS = ['lab07.ny-air', 'lab07.ny-sea', 'lab07.la-air', 'lab07.la-sea']
for name in QUEUES + ['lab07.berlin-express'] + DEPOTS:
    channel.queue_delete(queue=name)
channel.exchange_delete(exchange='lab07.logistics')


def drain(queue):
    """Take the messages out of a queue (at most 100) and return their bodies as text."""
    bodies = []
    for _ in range(100):
        method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body.decode())
    return bodies


def parcel(body, routing_key='', **headers):
    """Publish a parcel with these headers to lab07.logistics."""
    channel.basic_publish(exchange='lab07.logistics', routing_key=routing_key, body=body,
                          properties=pika.BasicProperties(headers=headers))


# %% [markdown]
# ## Bindings that compare headers
#
# A headers binding carries its headers in the binding's `arguments`, plus `x-match`:
#
# | queue | arguments | receives |
# |---|---|---|
# | `lab07.berlin-depot` | `x-match: all`, `destination: Berlin` | every parcel to Berlin |
# | `lab07.express-desk` | `x-match: any`, `delivery_method: express`, `priority: high` | express **or** high-priority parcels |
#
# The routing key of the binding is not used: we leave it empty.

# %%
channel.exchange_declare(exchange='lab07.logistics', exchange_type='headers', durable=True)
channel.queue_declare(queue='lab07.berlin-depot', durable=True)
channel.queue_bind(queue='lab07.berlin-depot', exchange='lab07.logistics', routing_key='',
                   arguments={'x-match': 'all', 'destination': 'Berlin'})
channel.queue_declare(queue='lab07.express-desk', durable=True)
channel.queue_bind(queue='lab07.express-desk', exchange='lab07.logistics', routing_key='',
                   arguments={'x-match': 'any', 'delivery_method': 'express',
                              'priority': 'high'})

# %%
parcel('p1: Berlin, standard', destination='Berlin', delivery_method='standard')
parcel('p2: Munich, express', destination='Munich', delivery_method='express')
parcel('p3: Berlin, express', destination='Berlin', delivery_method='express')
parcel('p4: Hamburg, standard, high', destination='Hamburg', delivery_method='standard',
       priority='high')
parcel('p5: Hamburg, standard', destination='Hamburg', delivery_method='standard')
for queue in ('lab07.berlin-depot', 'lab07.express-desk'):
    print(f'{queue}:', drain(queue))
# Expected output:
# lab07.berlin-depot: ['p1: Berlin, standard', 'p3: Berlin, express']
# lab07.express-desk: ['p2: Munich, express', 'p3: Berlin, express', 'p4: Hamburg, standard, high']

# %% [markdown]
# `p5` matched no binding and was dropped.
#
# ## The routing key is ignored
#
# A headers exchange looks only at the headers. The same parcel with the routing key
# `Berlin` — or any other — goes exactly where it went before; without the header it goes
# nowhere:

# %%
parcel('p6: routing key Berlin, no headers', routing_key='Berlin')
parcel('p7: routing key Munich, header Berlin', routing_key='Munich', destination='Berlin')
print('lab07.berlin-depot:', drain('lab07.berlin-depot'))
# Expected output:
# lab07.berlin-depot: ['p7: routing key Munich, header Berlin']

# %% [markdown]
# ## Watch it live
#
# The inbox consumes both depots. In the publisher form, type headers as `key=value`
# lines (for example `destination=Berlin`) and publish.

# %%
from mqkit.widgets import Publisher, QueueInbox, RoutingExplainer, TopologyView

inbox = QueueInbox(['lab07.berlin-depot', 'lab07.express-desk'], endpoints)
inbox

# %%
publisher = Publisher(endpoints, exchange='lab07.logistics', body='a parcel')
publisher

# %%
publisher.model.publish(exchange='lab07.logistics', body='p8: Berlin, express',
                        headers={'destination': 'Berlin', 'delivery_method': 'express'})
inbox.model.wait_for(2, timeout=5)
print("one parcel, the inbox received", inbox.model.count)
# Expected output:
# one parcel, the inbox received 2

# %%
TopologyView(endpoints, prefix="lab07.")

# %% [markdown]
# ## Why? The explainer
#
# Type headers (`key=value` lines or a JSON object). Values typed as `key=value` are
# strings; JSON lets you send numbers, and a number never equals a string: `"1"` is not `1`.

# %%
RoutingExplainer(endpoints, 'lab07.logistics',
                 headers={'destination': 'Berlin', 'delivery_method': 'standard'})

# %%
explainer = RoutingExplainerModel.from_broker(endpoints, 'lab07.logistics')
print(explainer.text('', {'destination': 'Munich', 'priority': 'low'}))
# Expected output:
# lab07.logistics (headers), routing key '', headers {'destination': 'Munich', 'priority': 'low'}:
# ✘ lab07.berlin-depot  headers {x-match='all', destination='Berlin'}  x-match=all: `destination` is `Munich`, the binding wants `Berlin`
# ✘ lab07.express-desk  headers {x-match='any', delivery_method='express', priority='high'}  x-match=any: no header matches (the message has no `delivery_method` header; `priority` is `low`, the binding wants `high`)
# → unroutable: no binding matches (the broker drops the message, or returns it when published with mandatory=True)

# %% [markdown]
# ## Headers starting with `x-`: `all-with-x` and `any-with-x`
#
# With `all` and `any`, binding arguments whose names start with `x-` are **not compared**
# (they are reserved for the broker). `any-with-x` and `all-with-x` (RabbitMQ 3.10 and later)
# compare them too. The model shows the difference for two bindings that both ask for
# `x-tenant: acme`:

# %%
tenants = RoutingExplainerModel('headers', [
    Binding('plain-any', arguments={'x-match': 'any', 'x-tenant': 'acme'}),
    Binding('with-x', arguments={'x-match': 'any-with-x', 'x-tenant': 'acme'}),
])
print(tenants.text('', {'x-tenant': 'acme'}))
# Expected output:
# exchange (headers), routing key '', headers {'x-tenant': 'acme'}:
# ✘ plain-any  headers {x-match='any', x-tenant='acme'}  x-match=any with no headers to compare matches nothing (`x-tenant` ignored: arguments starting with `x-` count only with all-with-x/any-with-x)
# ✔ with-x  headers {x-match='any-with-x', x-tenant='acme'}  x-match=any-with-x: `x-tenant` is `acme`
# → delivered to: with-x

# %% [markdown]
# The real broker agrees:

# %%
channel.queue_declare(queue='lab07.tenant-acme', durable=True)
channel.queue_bind(queue='lab07.tenant-acme', exchange='lab07.logistics',
                   arguments={'x-match': 'any-with-x', 'x-tenant': 'acme'})
parcel('p9: for acme', **{'x-tenant': 'acme'})
print('lab07.tenant-acme:', drain('lab07.tenant-acme'))
# Expected output:
# lab07.tenant-acme: ['p9: for acme']

# %% [markdown]
# ### Exercise: the Berlin express counter
#
# Bind the queue `lab07.berlin-express` to `lab07.logistics` so that it receives the
# parcels going to `Berlin` **and** sent `express` — both headers must match — and no
# others (not Berlin standard, not Hamburg express, not a parcel with only a destination).

# %%
channel.queue_declare(queue='lab07.berlin-express', durable=True)
### BEGIN SOLUTION
channel.queue_bind(queue='lab07.berlin-express', exchange='lab07.logistics', routing_key='',
                   arguments={'x-match': 'all', 'destination': 'Berlin',
                              'delivery_method': 'express'})
### END SOLUTION

# %%
self_check("07.express-berlin", endpoints)
# Expected result (solution):
# ✔ passed  07.express-berlin: queue 'lab07.berlin-express' receives parcels with destination Berlin and delivery_method express, and nothing else
# Expected result (student):
# ✘ not yet  07.express-berlin: queue 'lab07.berlin-express' did not receive a message with headers {'destination': 'Berlin', 'delivery_method': 'express'} Hint: A headers exchange routes on header values, not on the routing key: the queue must require both the destination and the delivery method. (more: hint=2)

# %% [markdown]
# ### Exercise: predict, then publish
#
# Four parcels, given by their headers. Which queues receive each? Write a set per label.

# %%
parcels = {
    'Berlin, express': {'destination': 'Berlin', 'delivery_method': 'express'},
    'Hamburg, high': {'destination': 'Hamburg', 'priority': 'high'},
    'Berlin, priority 1': {'destination': 'Berlin', 'priority': 1},
    'acme, Munich': {'x-tenant': 'acme', 'destination': 'Munich'},
}
prediction = {label: set() for label in parcels}
### BEGIN SOLUTION
prediction = {
    'Berlin, express': {'lab07.berlin-depot', 'lab07.express-desk', 'lab07.berlin-express'},
    'Hamburg, high': {'lab07.express-desk'},
    'Berlin, priority 1': {'lab07.berlin-depot'},
    'acme, Munich': {'lab07.tenant-acme'},
}
### END SOLUTION

# %%
predict_then_publish(endpoints, 'lab07.logistics', prediction, messages=parcels)
# Expected result (solution):
# prediction vs broker, exchange 'lab07.logistics'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message             lab07.berlin-depot  lab07.berlin-express  lab07.express-desk  lab07.tenant-acme
# Berlin, express     yes · you: yes ✔    yes · you: yes ✔      yes · you: yes ✔    no · you: no ✔
# Hamburg, high       no · you: no ✔      no · you: no ✔        yes · you: yes ✔    no · you: no ✔
# Berlin, priority 1  yes · you: yes ✔    no · you: no ✔        no · you: no ✔      no · you: no ✔
# acme, Munich        no · you: no ✔      no · you: no ✔        no · you: no ✔      yes · you: yes ✔
# 4 of 4 messages predicted right.
# Expected result (student):
# prediction vs broker, exchange 'lab07.logistics'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message             lab07.berlin-depot  lab07.express-desk  lab07.tenant-acme
# Berlin, express     yes · you: no ✘     yes · you: no ✘     no · you: no ✔
# Hamburg, high       no · you: no ✔      yes · you: no ✘     no · you: no ✔
# Berlin, priority 1  yes · you: no ✘     no · you: no ✔      no · you: no ✔
# acme, Munich        no · you: no ✔      no · you: no ✔      yes · you: no ✘
# ✘ 'Berlin, express': the broker delivered it to lab07.berlin-depot, lab07.express-desk; you predicted no queue
# ✘ 'Hamburg, high': the broker delivered it to lab07.express-desk; you predicted no queue
# ✘ 'Berlin, priority 1': the broker delivered it to lab07.berlin-depot; you predicted no queue
# ✘ 'acme, Munich': the broker delivered it to lab07.tenant-acme; you predicted no queue
# 0 of 4 messages predicted right.

# %% [markdown]
# ### Exercise: the lecture's depots
#
# The lecture's company ships to **New York** and **Los Angeles**, by **air** or by
# **sea**, and has one depot for each combination. Build the four depots on
# `lab07.logistics`, each a durable queue (the list `DEPOTS` from the first cell holds their
# names):
#
# | queue | receives the parcels with |
# |---|---|
# | `lab07.ny-air` | destination `New York`, delivery method `air` |
# | `lab07.ny-sea` | destination `New York`, delivery method `sea` |
# | `lab07.la-air` | destination `Los Angeles`, delivery method `air` |
# | `lab07.la-sea` | destination `Los Angeles`, delivery method `sea` |
#
# The headers are `destination` and `delivery_method`, as above. A depot takes its parcels
# whatever other headers they carry (`fragile`, `priority`), and nothing else: a parcel with
# only a destination, only a delivery method, another method (`express`) or another city
# reaches none of the four. Four queues, four bindings: a loop over the cities and the
# methods keeps it short.

# %%
### BEGIN SOLUTION
for city, code in [('New York', 'ny'), ('Los Angeles', 'la')]:
    for method in ('air', 'sea'):
        depot = f'lab07.{code}-{method}'
        channel.queue_declare(queue=depot, durable=True)
        channel.queue_bind(queue=depot, exchange='lab07.logistics', routing_key='',
                           arguments={'x-match': 'all', 'destination': city,
                                      'delivery_method': method})
### END SOLUTION

# %% [markdown]
# The self-check publishes a parcel for each combination, and parcels that must reach no
# depot, and looks in the four queues: each must hold exactly its own parcels.

# %%
self_check("07.lecture-routes", endpoints)
# Expected result (solution):
# ✔ passed  07.lecture-routes: each depot gets the parcels of its destination and delivery method, and no queue anything else
# Expected result (student):
# ✘ not yet  07.lecture-routes: there is no queue 'lab07.ny-air' Hint: Each depot handles one destination and one delivery method: its binding must require both headers, so a parcel that has only one of them, or another value, reaches no depot. (more: hint=2)

# %% [markdown]
# ## Summary
#
# - A **headers exchange** ignores the routing key and compares the message's headers with
#   each binding's arguments.
# - `x-match: all` (the default) needs every header to match; `x-match: any` needs one.
# - Arguments starting with `x-` are compared only with `all-with-x` / `any-with-x`.
# - Values are compared with their type: the string `"1"` is not the number `1`.
# - One queue per combination of header values (the lecture's New York / Los Angeles ×
#   air / sea depots) is one `x-match: all` binding per queue.
#
# Next: **lab 08**, request/reply over a second queue.
