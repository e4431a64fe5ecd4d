# %% [markdown]
# # Lab 00 — Setup: real brokers for the labs
#
# **Learning goals**
#
# - start a RabbitMQ and a Mosquitto broker with one call, and read where they are;
# - tell whether your machine can run brokers, and why not (`mqkit.doctor()`);
# - know what to do when a broker does not start;
# - see what a broker is for: a producer and a consumer that never meet, in time or in
#   process, still exchange every message.
#
# **Estimated time:** 15 minutes.
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
# ## What a broker is for: the producer and the consumer never meet
#
# A **producer** sends messages, a **consumer** receives them, and the **broker** sits in
# between: it keeps each message in a **queue** until a consumer takes it. So the two are
# *decoupled*:
#
# - in **time**: the consumer may start after the producer has finished and gone;
# - in **space**: they may be different programs, on different machines; each knows only
#   the broker's address and the queue's name;
# - in **rate**: a fast producer does not overrun a slow consumer; the queue takes up the
#   difference.
#
# The experiment below proves the first two on the real RabbitMQ. First, start clean: the
# cell removes the queues a previous run of it left behind.

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
# ### Exercise: a producer that sends to nobody
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
# - A broker decouples a producer from its consumer: the queue keeps the messages until a
#   consumer, started later in another process, takes them.
#
# Next: **lab 01**, connections and channels.
