# %% [markdown]
# # Lab 00 — Messaging concepts and setup
#
# **Learning goals**
#
# - start a RabbitMQ and a Mosquitto broker with one call, and read where they are;
# - tell whether your machine can run brokers, and why not (`mqkit.doctor()`);
# - know what to do when a broker does not start;
# - say why a broker decouples producers from consumers (in time, space and rate), and
#   what guaranteed delivery adds to fire-and-forget;
# - recognise three patterns: work queue, publish/subscribe, request/reply;
# - read the AMQP 0-9-1 model (producer → exchange → binding → queue → consumer) in a
#   picture of the real broker, and know the words every later lab uses;
# - prove it: a producer and a consumer that never meet, in time or in process, still
#   exchange every message.
#
# **Estimated time:** 30 minutes.
#
# Every lab talks to *real* brokers. You never install or configure one by hand: the
# `mqkit` package starts them (with Docker when it is there, else as local processes) or
# uses your classroom's broker when your instructor set `MQKIT_AMQP_URL`.

# %% [markdown]
# ## Start the brokers
#
# `mqkit.start_brokers()` starts both brokers, or reuses the ones already running, and waits
# until they really answer. The first start takes a few seconds; later calls are instant.

# %%
import mqkit

endpoints = mqkit.start_brokers()

# %% [markdown]
# `endpoints` tells where the brokers are: three URLs and the backend that runs them. Its
# printed form hides the password.

# %%
print(endpoints.amqp.redacted())
print(endpoints.mqtt.redacted())
# Expected output:
# amqp://mqkit:***@127.0.0.1:PORT
# mqtt://mqkit:***@127.0.0.1:PORT

# %% [markdown]
# The full URLs, such as `endpoints.amqp_url`, contain the password: pass them to
# `pika.URLParameters(...)` (lab 01) rather than printing them, and never paste them into a
# notebook you share.
#
# ## Which backends can run here?
#
# `mqkit.doctor()` asks each way of getting a broker whether it works on this machine and,
# if not, what would fix it. Your output depends on your machine.

# %%
for availability in mqkit.doctor():
    mark = "ok" if availability.is_available else "no"
    print(f"[{mark}] {availability.backend:<9} {availability.reason}")

# %% [markdown]
# And what runs right now:

# %%
status = mqkit.broker_status()
for broker in status["brokers"]:
    print(broker.broker, "is", "up" if broker.is_running else "DOWN")
# Expected output:
# rabbitmq is up
# mosquitto is up

# %% [markdown]
# The same, as a panel you can keep open: it shows both brokers and has buttons to start,
# restart and stop them. (Restarting takes a few seconds; stopping deletes their data.)

# %%
from mqkit.widgets import BrokerPanel

BrokerPanel()

# %% [markdown]
# ## When a broker does not start
#
# mqkit's errors say what failed, what it saw, and — after `Hint:` — what to try next.
# For instance, asking for the *external* backend without saying where the broker is:

# %%
try:
    mqkit.start_brokers(backend="external")
except mqkit.MQKitError as error:
    print(type(error).__name__)
    print(error)
# Expected output:
# BackendUnavailable
# The external backend needs MQKIT_AMQP_URL and MQKIT_MQTT_URL.
# Hint: Set both (MQKIT_MANAGEMENT_URL too, if the broker has the management plugin), or choose another backend.

# %% [markdown]
# What to do when `start_brokers()` fails:
#
# | you see | try |
# |---|---|
# | `NoBackendError` | install Docker, or `apt-get install rabbitmq-server mosquitto`, or ask for the classroom broker's URLs (`MQKIT_AMQP_URL`, `MQKIT_MQTT_URL`) |
# | `BrokerTimeout` | a slow machine: `MQKIT_STARTUP_TIMEOUT=120`, then run the cell again |
# | `BrokerExited` | read the log lines in the message; in a terminal `mqkit logs rabbitmq` |
# | `AuthenticationError` | stale credentials: `mqkit down`, then start again |
# | anything odd | in a terminal: `mqkit doctor`, `mqkit status`, `mqkit down` then `mqkit up` |
#
# The brokers keep running when you close the notebook, so the next lab starts instantly;
# `mqkit down` in a terminal stops them and deletes their data. To start one lab over,
# `mqkit.cleanup(endpoints, "lab04.")` deletes that lab's queues and exchanges.
#
# **On Binder** (mybinder.org), a session that sits idle for about ten minutes is ended,
# and everything in it goes: your edits, and the brokers with their messages. Before you
# step away, download your notebook (*File › Download*); when you come back, open the
# Binder link again and upload it.

# %% [markdown]
# ## Self-check
#
# Every lab ends its exercises with cells like this one. It looks at the real broker and
# shows one line: `✔ passed`, or `✘ not yet` with a hint. It never raises, so the notebook
# runs on. (Keep `self_check(...)` as the last line of its cell, so its verdict shows.)
#
# The first hint names what is missing, in terms of the idea, not the code. Stuck? Ask for
# the next, more concrete level with `hint=2` (for example
# `self_check("00.brokers-reachable", endpoints, hint=2)`); only the last level shows code.

# %%
from mqkit.grading import self_check

self_check("00.brokers-reachable", endpoints)
# Expected result:
# ✔ passed  00.brokers-reachable: RabbitMQ, its management API and Mosquitto all answer

# %% [markdown]
# ## What messaging is, tried on the real broker
#
# The brokers run. Before the next labs use them, this part says what they are for, with
# small experiments on the real RabbitMQ. Start clean: the cell removes every `lab00.`
# queue and exchange that an earlier run of this lab left behind.

# %%
import pika
import pika.exceptions

mqkit.cleanup(endpoints, "lab00.")
demo = mqkit.notebook_connection(endpoints, name="lab00-demo")  # stays up while you read
demo_channel = demo.channel()

# %% [markdown]
# ## Producer, broker, consumer
#
# A **producer** sends messages, a **consumer** receives them, and the **broker** sits in
# between: it keeps each message in a **queue** until a consumer takes it. The producer
# never calls the consumer; each talks only to the broker. So the two are *decoupled*:
#
# - in **time**: the consumer may start after the producer has finished and gone;
# - in **space**: they may be different programs, on different machines; each knows only
#   the broker's address and the queue's name;
# - in **rate**: a fast producer does not overrun a slow consumer; the queue takes up the
#   difference, and more consumers can share the work.
#
# The exercise at the end of this lab proves the first two with a producer and a consumer
# that never run at the same time, in two processes.

# %% [markdown]
# ## What the brokers are
#
# - **RabbitMQ** is a message broker that implements **AMQP 0-9-1** (the Advanced Message
#   Queuing Protocol), the protocol of labs 01–09; Python talks to it with **pika**. It can
#   speak MQTT too, through its `rabbitmq_mqtt` plugin, which mqkit does not enable.
# - **Mosquitto** is a small broker for **MQTT**, the publish/subscribe protocol of
#   sensors and devices (labs 10–11); Python talks to it with **paho-mqtt**.
#
# Ask each one what it is (the versions depend on how mqkit runs them on your machine).
# RabbitMQ answers through its management API:

# %%
overview = mqkit.Admin(endpoints).overview()
protocols = sorted({listener["protocol"] for listener in overview.get("listeners", [])})
print(overview["product_name"], overview["rabbitmq_version"], "listens for:",
      protocols or "(shown to monitoring users only)")

# %% [markdown]
# `amqp` is the protocol of the labs, `http` the management UI and API (lab 01 tours it),
# and `clustering` is how RabbitMQ nodes talk to each other; no `mqtt`.
#
# Mosquitto publishes facts about itself on topics of its own, under `$SYS/`. The cell
# subscribes to `$SYS/broker/version` and waits for one message (lab 10 explains each
# step of an MQTT client):

# %%
import threading

answered, version = threading.Event(), []


def on_connect(client, userdata, flags, reason_code, properties):
    client.subscribe("$SYS/broker/version")


def on_message(client, userdata, message):
    version.append(message.payload.decode())
    answered.set()


mqtt = mqkit.mqtt_client(endpoints, client_id="lab00-version")
mqtt.on_connect, mqtt.on_message = on_connect, on_message
mqtt.connect(endpoints.mqtt.host, endpoints.mqtt.port)
mqtt.loop_start()  # paho's network loop, in a thread of its own
answered.wait(timeout=5)
mqtt.disconnect()
mqtt.loop_stop()
print(version[0] if version else "Mosquitto did not answer in 5 s")

# %% [markdown]
# ## The AMQP 0-9-1 model
#
# In AMQP 0-9-1 a producer never sends to a queue. It sends to an **exchange**, with a
# **routing key** on the message. **Bindings** connect the exchange to queues, each with a
# **binding key**; the exchange copies the message to every queue whose binding matches.
# A consumer reads from a queue:
#
# **producer → exchange → binding → queue → consumer**
#
# The cell builds one of each: the direct exchange `lab00.shop`, the queue `lab00.orders`,
# and a binding with the key `order.new`. Then the producer sends three messages: two with
# the routing key `order.new`, one with `order.cancel`, which no binding matches.

# %%
demo_channel.exchange_declare(exchange="lab00.shop", exchange_type="direct", durable=True)
demo_channel.queue_declare(queue="lab00.orders", durable=True)
demo_channel.queue_bind(queue="lab00.orders", exchange="lab00.shop", routing_key="order.new")
producer_channel = demo.channel()
producer_channel.confirm_delivery()  # each publish waits until the broker has it (more below)
for key, body in [("order.new", "2 apples"), ("order.cancel", "no pears"),
                  ("order.new", "3 plums")]:
    producer_channel.basic_publish(exchange="lab00.shop", routing_key=key, body=body)
orders = demo_channel.queue_declare(queue="lab00.orders", durable=True).method.message_count
print("sent 3; waiting in lab00.orders:", orders)
# Expected output:
# sent 3; waiting in lab00.orders: 2

# %% [markdown]
# Where did `order.cancel` go? The direct exchange found no binding with that key, and
# dropped it. The picture is drawn from what the broker holds now (its management API),
# not from this lab's code: this lab's exchanges and queues (`lab00.*`), each binding with
# its key, each queue with its count. Your producer stands to its left, the consumer to
# its right.

# %%
import ipywidgets as widgets

from mqkit.widgets import TopologyView


def side(text):
    return widgets.HTML(f'<div style="border: 1px dashed #6b7280; padding: 8px; '
                        f'margin-top: 56px">{text}</div>')


widgets.HBox([side("producer<br><code>basic_publish</code> →"),
              TopologyView(endpoints, prefix="lab00."),
              side("→ consumer<br><code>basic_consume</code>")])

# %% [markdown]
# Now the consumer's end. Each message comes with a **delivery tag**, the broker's number
# for this delivery on this channel; the consumer **acknowledges** (acks) by that number,
# and only then does the broker delete the message.

# %%
for method, properties, body in demo_channel.consume("lab00.orders", inactivity_timeout=1):
    if method is None:
        break
    print("delivery tag", method.delivery_tag, "routing key", method.routing_key,
          "body", body.decode())
    demo_channel.basic_ack(delivery_tag=method.delivery_tag)
demo_channel.cancel()
left = demo_channel.queue_declare(queue="lab00.orders", durable=True).method.message_count
print("left in lab00.orders:", left)
# Expected output:
# delivery tag 1 routing key order.new body 2 apples
# delivery tag 2 routing key order.new body 3 plums
# left in lab00.orders: 0

# %% [markdown]
# Click *Refresh* on the picture above: the acknowledged messages are gone from
# `lab00.orders`.

# %% [markdown]
# ## Fire-and-forget, or guaranteed delivery
#
# *Fire-and-forget*: the producer sends and moves on, and nobody tells it whether the
# message arrived anywhere. *Guaranteed delivery*: the broker confirms that it has taken
# the message, and the message waits, on disk, until a consumer confirms that it is done.
#
# First, fire-and-forget: send to an exchange that no queue is bound to. Nothing
# complains.

# %%
demo_channel.exchange_declare(exchange="lab00.nowhere", exchange_type="direct", durable=True)
demo_channel.basic_publish(exchange="lab00.nowhere", routing_key="order", body="order 1")
print("publish returned; the message went nowhere, and nobody said so")
# Expected output:
# publish returned; the message went nowhere, and nobody said so

# %% [markdown]
# Now ask the broker to answer for each message: `confirm_delivery()` turns on *publisher
# confirms* on a channel, and `mandatory=True` asks for a message to come back when no
# queue takes it. The same publish now fails loudly.

# %%
confirmed = demo.channel()
confirmed.confirm_delivery()
try:
    confirmed.basic_publish(exchange="lab00.nowhere", routing_key="order", body="order 2",
                            mandatory=True)
except pika.exceptions.UnroutableError as error:
    print("the broker returned it:", error)
# Expected output:
# the broker returned it: 1 unroutable message(s) returned

# %% [markdown]
# With a durable queue bound to the exchange and a *persistent* message
# (`delivery_mode=2`), the confirmed publish returns only once the broker has taken the
# message; it then waits in the queue, written to disk, for a consumer. Lab 09 builds the
# whole chain (confirms, persistence, acks, dead letters).

# %%
confirmed.queue_declare(queue="lab00.kept", durable=True)
confirmed.queue_bind(queue="lab00.kept", exchange="lab00.nowhere", routing_key="order")
confirmed.basic_publish(exchange="lab00.nowhere", routing_key="order", body="order 3",
                        mandatory=True, properties=pika.BasicProperties(delivery_mode=2))
kept = confirmed.queue_declare(queue="lab00.kept", durable=True).method.message_count
print("confirmed by the broker; waiting in lab00.kept:", kept)
# Expected output:
# confirmed by the broker; waiting in lab00.kept: 1

# %% [markdown]
# ## Three patterns
#
# With queues and exchanges, three ways of talking come up again and again.
#
# **Point-to-point (a work queue).** Several consumers read one queue; each message goes
# to exactly one of them. The workers share the load: this is how the rate decoupling
# scales, by adding workers. Two workers on `lab00.tasks`, six tasks (lab 03 goes further):

# %%
import time

demo_channel.queue_declare(queue="lab00.tasks", durable=True)
worker_a, worker_b = demo.channel(), demo.channel()
done = {"worker A": [], "worker B": []}
worker_a.basic_consume("lab00.tasks", auto_ack=True, on_message_callback=lambda ch, method,
                       properties, body: done["worker A"].append(body.decode()))
worker_b.basic_consume("lab00.tasks", auto_ack=True, on_message_callback=lambda ch, method,
                       properties, body: done["worker B"].append(body.decode()))
for number in range(1, 7):
    demo_channel.basic_publish(exchange="", routing_key="lab00.tasks", body=f"task {number}")
deadline = time.monotonic() + 5
while len(done["worker A"]) + len(done["worker B"]) < 6 and time.monotonic() < deadline:
    demo.process_data_events(time_limit=0.2)  # pika runs the workers' callbacks here
worker_a.close()
worker_b.close()
for worker, tasks in done.items():
    print(worker, "did", tasks)
# Expected output:
# worker A did ['task 1', 'task 3', 'task 5']
# worker B did ['task 2', 'task 4', 'task 6']

# %% [markdown]
# RabbitMQ hands the messages to the two consumers in turn (*round robin*). Here each
# worker does `auto_ack=True`: the broker counts a message as done as soon as it sends
# it. Lab 03 shows why real workers ack by hand, and how **prefetch** limits how many
# unacknowledged messages one worker may hold.

# %% [markdown]
# **Publish/subscribe.** Every subscriber gets its own copy. Each subscriber has a queue
# of its own, bound to a **fanout** exchange, which copies every message to every bound
# queue and ignores routing keys (lab 06). The two queues are *exclusive*: the broker
# names them (`amq.gen-…`) and deletes them when this connection closes.

# %%
demo_channel.exchange_declare(exchange="lab00.news", exchange_type="fanout", durable=True)
subscribers = {}
for subscriber in ("subscriber A", "subscriber B"):
    subscribers[subscriber] = demo_channel.queue_declare(queue="", exclusive=True).method.queue
    demo_channel.queue_bind(queue=subscribers[subscriber], exchange="lab00.news")
for news in ("rates are up", "new CEO"):
    confirmed.basic_publish(exchange="lab00.news", routing_key="", body=news)
for subscriber, own_queue in subscribers.items():
    got = []
    while (message := demo_channel.basic_get(queue=own_queue, auto_ack=True))[0] is not None:
        got.append(message[2].decode())
    print(subscriber, "got", got)
# Expected output:
# subscriber A got ['rates are up', 'new CEO']
# subscriber B got ['rates are up', 'new CEO']

# %% [markdown]
# **Request/reply over a second queue.** Messaging is one-way; a synchronous call is
# simulated with two queues. The client sends its request to the server's queue with two
# properties: `reply_to` (the name of its own reply queue) and `correlation_id` (to match
# the answer to the question). The server answers to the queue named in `reply_to`. Lab 08
# builds a full RPC client and server.

# %%
import uuid

demo_channel.queue_declare(queue="lab00.requests", durable=True)
replies = demo_channel.queue_declare(queue="", exclusive=True).method.queue  # the client's own
question = str(uuid.uuid4())
confirmed.basic_publish(exchange="", routing_key="lab00.requests", body="how many plums?",
                        properties=pika.BasicProperties(reply_to=replies,
                                                        correlation_id=question))

server = demo.channel()  # the server's side: take the request, answer to reply_to
for method, properties, body in server.consume("lab00.requests", inactivity_timeout=5):
    server.basic_publish(exchange="", routing_key=properties.reply_to, body="3 plums",
                         properties=pika.BasicProperties(
                             correlation_id=properties.correlation_id))
    server.basic_ack(delivery_tag=method.delivery_tag)
    break
server.close()

for method, properties, body in demo_channel.consume(replies, auto_ack=True, inactivity_timeout=5):
    break  # the first reply (or, after 5 s, none)
demo_channel.cancel()
print("reply:", body.decode() if body else None,
      "| matches the question:", properties is not None
      and properties.correlation_id == question)
# Expected output:
# reply: 3 plums | matches the question: True

# %% [markdown]
# Here the whole conversation runs in this notebook, to keep it short; in real life the
# server is another program, and the client waits only on its own reply queue.

# %% [markdown]
# ## Glossary: the pipes
#
# Every later lab uses these words. Come back here when one is unclear.
#
# | word | what it is | more in |
# |---|---|---|
# | **connection** | one TCP connection from a client to the broker, logged in as a user to a vhost | lab 01 |
# | **channel** | a numbered lightweight session inside a connection; every declare, publish and consume happens on one; an error closes the channel, not the connection | lab 01 |
# | **vhost** | a *virtual host*: a separate set of exchanges, queues, bindings and permissions inside one broker; the `/%2F` that ends an AMQP URL names the vhost `/` | lab 01 |
# | **heartbeat** | a tiny frame client and broker send each other while idle, so each notices a dead peer; pika's `BlockingConnection` only answers while your code calls pika, so a connection left idle in a notebook can be closed (`mqkit.notebook_connection` reconnects) | lab 01 |

# %% [markdown]
# ## Glossary: the messages
#
# | word | what it is | more in |
# |---|---|---|
# | **routing key** vs **binding key** | the routing key is on the message (`basic_publish(routing_key=...)`); the binding key is on the binding (`queue_bind(..., routing_key=...)`: pika names this argument `routing_key` too); the exchange compares the two | labs 04–05 |
# | **delivery tag** | the number the broker gives each delivery on a channel (1, 2, 3, …); acks name it | lab 03 |
# | **ack** | the consumer's "done with this one": only then does the broker delete the message; an unacknowledged message goes back to the queue when its channel closes (`auto_ack=True` skips acks: done as soon as sent) | lab 03 |
# | **prefetch** | how many unacknowledged messages the broker may push to one consumer's channel at a time (`basic_qos(prefetch_count=N)`) | lab 03 |
# | **durable** vs **persistent** | *durable* is a queue's (or an exchange's) property: its definition survives a broker restart; *persistent* (`delivery_mode=2`) is a message's: it is written to disk. A message in a classic queue survives a restart only when it is persistent *and* its queue durable | lab 02 |

# %% [markdown]
# ## Exercise: a producer and a consumer that never meet
#
# Now prove the decoupling in time and in space. First, start clean: the cell removes the
# queues that a previous run of this exercise left behind.

# %%
import json
import os
import subprocess
import sys

import pika

ORDERS = [f"order {number}" for number in range(1, 6)]
setup = mqkit.amqp_connection(endpoints, name="lab00-setup")
for name in ("lab00.inbox", "lab00.receipts"):
    setup.channel().queue_delete(queue=name)
setup.close()

# %% [markdown]
# ### The producer: it sends to nobody
#
# The words you need (labs 01–03 take each one further):
#
# | what | how |
# |---|---|
# | a **connection** to RabbitMQ, with a name the broker shows | `mqkit.amqp_connection(endpoints, name=...)` |
# | a **channel** on it: you talk to the broker through a channel | `.channel()` on the connection |
# | a **queue** that outlives a restart (created, or confirmed if it exists) | `.queue_declare(queue=..., durable=True)` on the channel |
# | send one message straight to a queue (the empty exchange name) | `.basic_publish(exchange="", routing_key=<the queue>, body=..., properties=...)` |
# | headers, and "keep it on disk" | `pika.BasicProperties(headers={...}, delivery_mode=2)` |
# | this process's id | `os.getpid()` |
# | done: end the connection | `.close()` on the connection |
#
# Write the producer: open a connection named `lab00-producer`, declare the durable
# queue `lab00.inbox`, send each of the five `ORDERS` to it with the header
# `producer_pid` set to this process's id, and close the connection. No consumer runs.

# %%
### BEGIN SOLUTION
producer = mqkit.amqp_connection(endpoints, name="lab00-producer")
channel = producer.channel()
channel.queue_declare(queue="lab00.inbox", durable=True)
for order in ORDERS:
    channel.basic_publish(exchange="", routing_key="lab00.inbox", body=order,
                          properties=pika.BasicProperties(
                              headers={"producer_pid": os.getpid()}, delivery_mode=2))
producer.close()
### END SOLUTION

# %% [markdown]
# Your producer is gone. What does the broker hold? (Declaring a queue that exists returns
# its counts.)

# %%
look = mqkit.amqp_connection(endpoints, name="lab00-look")
inbox = look.channel().queue_declare(queue="lab00.inbox", durable=True).method
look.close()
print("waiting in lab00.inbox:", inbox.message_count, "| consumers:", inbox.consumer_count)
# Expected output (solution):
# waiting in lab00.inbox: 5 | consumers: 0
# Expected output (student):
# waiting in lab00.inbox: 0 | consumers: 0

# %% [markdown]
# ### The consumer: another program, started now
#
# `CONSUMER` is a separate Python program. The cell runs it in a **new process** (with
# `subprocess`) and hands it only the broker's address, in an environment variable (never
# printed: it carries the password). It takes what waits in `lab00.inbox`, acknowledges
# each message, and stops after a second with nothing new. Then it leaves a **receipt** in
# the queue `lab00.receipts`, for the self-check: its process id, what was waiting when it
# started, and what it received.

# %%
CONSUMER = """
import json, os
import mqkit

connection = mqkit.amqp_connection(os.environ["LAB00_AMQP_URL"], name="lab00-consumer")
channel = connection.channel()
inbox = channel.queue_declare(queue="lab00.inbox", durable=True).method
received, producers = [], set()
for method, properties, body in channel.consume("lab00.inbox", inactivity_timeout=1):
    if method is None:                      # nothing new for a second: done
        break
    received.append(body.decode())
    producers.add((properties.headers or {}).get("producer_pid"))
    channel.basic_ack(delivery_tag=method.delivery_tag)
channel.cancel()
receipt = {"consumer_pid": os.getpid(), "waiting_at_start": inbox.message_count,
           "consumers_at_start": inbox.consumer_count, "received": received,
           "producer_pids": sorted(pid for pid in producers if pid is not None)}
channel.queue_declare(queue="lab00.receipts", durable=True)
channel.basic_publish(exchange="", routing_key="lab00.receipts", body=json.dumps(receipt))
connection.close()
print(json.dumps(receipt))
"""
run = subprocess.run([sys.executable, "-c", CONSUMER], capture_output=True, text=True,
                     timeout=60, env={**os.environ, "LAB00_AMQP_URL": endpoints.amqp_url})
if run.returncode != 0:
    print("the consumer failed:", run.stderr.strip().splitlines()[-1:])
receipt = json.loads(run.stdout) if run.returncode == 0 else {}
print("the consumer ran in this kernel's process:", receipt.get("consumer_pid") == os.getpid())
print("orders waiting when it started:", receipt.get("waiting_at_start"))
print("it received:", receipt.get("received"))
print("sent by this kernel's process:", receipt.get("producer_pids") == [os.getpid()])
# Expected output (solution):
# the consumer ran in this kernel's process: False
# orders waiting when it started: 5
# it received: ['order 1', 'order 2', 'order 3', 'order 4', 'order 5']
# sent by this kernel's process: True
# Expected output (student):
# the consumer ran in this kernel's process: False
# orders waiting when it started: 0
# it received: []
# sent by this kernel's process: False

# %%
self_check("00.decoupled", endpoints)
# Expected result (solution):
# ✔ passed  00.decoupled: 5 orders waited in the queue with no consumer and no producer connection, then a consumer in another process received them all
# Expected result (student):
# ✘ not yet  00.decoupled: 0 of the 5 orders were waiting when the consumer started: send them all first, with no consumer running Hint: Messaging decouples in time: the producer may finish and go away before any consumer exists, and the queue keeps the messages. Did your producer send every order, close its connection, and only then did the consumer start? (more: hint=2)

# %% [markdown]
# The producer's process finished before the consumer's began, and the two processes
# share nothing but the broker's address and a queue name: that is decoupling. To run the
# experiment again, run the producer cell, then the consumer cell.

# %% [markdown]
# ## Summary
#
# - `endpoints = mqkit.start_brokers()` gives you running brokers; every lab starts with it.
# - `endpoints.amqp_url` and `endpoints.mqtt_url` carry the password: use them, don't share them.
# - `mqkit.doctor()` and the `Hint:` of each error tell you how to fix a machine that cannot
#   run brokers.
# - A broker decouples a producer from its consumer in time, space and rate: the queue
#   keeps the messages until a consumer, started later in another process, takes them.
# - Fire-and-forget loses what nothing routes, silently; publisher confirms, persistent
#   messages in durable queues and acks make delivery guaranteed (lab 09).
# - AMQP 0-9-1: producer → exchange → binding → queue → consumer; RabbitMQ speaks it,
#   Mosquitto speaks MQTT.
# - Three patterns: a work queue (each message to one worker), publish/subscribe (a copy
#   for every subscriber), request/reply (a second queue named in `reply_to`).
# - The glossary above is the vocabulary of every later lab.
#
# Next: **lab 01**, connections and channels, and a tour of the management UI.
