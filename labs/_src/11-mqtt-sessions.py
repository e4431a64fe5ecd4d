# %% [markdown]
# # Lab 11 — MQTT sessions, last will and the lecture's example
#
# **Learning goals**
#
# - let the broker announce a crashed client with a **last will**;
# - receive what was published while you were away with a **persistent session**, in MQTT
#   3.1.1 and MQTT 5;
# - let two workers share one stream of tasks with an MQTT 5 **shared subscription**;
# - run the lecture's producer and consumer (the docker-compose example) and read its
#   `compose.yaml`;
# - decide between MQTT and AMQP.
#
# It builds on lab 10 (paho-mqtt 2 clients, topics, QoS, retained messages) but runs on its
# own: the first cells repeat the setup it needs.
#
# **Estimated time:** 45 minutes.

# %% [markdown]
# ## Setup
#
# `mqkit.start_brokers()` gives the address and credentials of the kit's Mosquitto
# (`endpoints.mqtt`: host, port, user name, password). Every run of this lab uses its own
# topic prefix and client ids (`RUN`), so running it again never mixes with an earlier run.

# %%
import threading
import uuid

import paho.mqtt.client as mqtt

import mqkit
from mqkit.grading import self_check

endpoints = mqkit.start_brokers()
broker = endpoints.mqtt          # .host, .port, .username, .password
RUN = uuid.uuid4().hex[:6]       # unique per run: topics and client ids never collide
ROOT = f"lab11/run-{RUN}"        # the topic prefix of this run
print("Mosquitto at", f"{broker.host}:{broker.port}")
# Expected output:
# Mosquitto at 127.0.0.1:PORT

# %% [markdown]
# The helpers of lab 10, repeated: `new_client` (a paho 2 client with a unique id and the
# credentials), `start` (connect, loop in the background, wait for CONNACK), `subscribe`
# (wait for the SUBACK) and `stop`. `Collector` gathers the messages a client receives:
# paho calls `on_message` in its own thread, so it only appends to a list, and the cell
# waits (with a timeout) for the count. `publisher` is a connected client for the
# examples' messages.

# %%
def new_client(name, protocol=mqtt.MQTTv311, **options):
    """A paho 2 client with a unique id (name-RUN) and the kit's credentials."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{RUN}",
                         protocol=protocol, **options)
    client.username_pw_set(broker.username, broker.password)
    return client


def start(client, timeout=5, **connect_options):
    """Connect, start the network loop, wait for CONNACK; return 'session present'."""
    answer = {}
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        answer.update(reason_code=reason_code, session_present=flags.session_present)
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port, **connect_options)
    client.loop_start()
    if not done.wait(timeout) or answer["reason_code"].is_failure:
        raise RuntimeError(f"no successful CONNACK: {answer}")
    return answer["session_present"]


def subscribe(client, topic_filter, qos=0, timeout=5):
    """Subscribe and wait for the SUBACK; return the broker's answer (granted QoS)."""
    done = threading.Event()
    answer = []
    client.on_subscribe = lambda c, u, mid, codes, props: (answer.extend(codes), done.set())
    client.subscribe(topic_filter, qos)
    done.wait(timeout)
    return answer[0] if answer else None


def stop(*clients):
    for client in clients:
        client.disconnect()
        client.loop_stop()


class Collector:
    """The messages a client receives (appended from paho's thread)."""

    def __init__(self, client):
        self.messages = []
        self._changed = threading.Condition()
        client.on_message = self._on_message

    def _on_message(self, client, userdata, message):
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, count, timeout=5):
        """Wait until ``count`` messages arrived (at most ``timeout`` seconds)."""
        return self.wait_until(lambda messages: len(messages) >= count, timeout)

    def wait_until(self, condition, timeout=5):
        with self._changed:
            return self._changed.wait_for(lambda: condition(self.messages), timeout)

    def payloads(self):
        return [m.payload.decode() for m in self.messages]


def short(topic):
    """A topic without this run's prefix, for printing."""
    return topic.removeprefix(ROOT + "/")


publisher = new_client("publisher")
start(publisher)

# %% [markdown]
# Start clean: the exercises use fixed names (the self-checks look for them), so remove what
# an earlier run left on the broker: the retained status of `sensor-1` (an empty retained
# payload deletes it) and the stored session of the client id `lab11-worker` (a clean
# connect discards it).

# %%
cleaner = new_client("cleaner")
start(cleaner)
cleaner.publish("lab11/devices/sensor-1/status", "", qos=1, retain=True).wait_for_publish(5)
stop(cleaner)
cleaner = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lab11-worker",
                      clean_session=True)
cleaner.username_pw_set(broker.username, broker.password)
start(cleaner)
stop(cleaner)

# %% [markdown]
# ## The last will
#
# A client may leave a **last will** with the broker when it connects (`will_set`, before
# `connect`): a message the broker publishes *for* the client if the client vanishes without
# a DISCONNECT — a crash, a power cut, a lost network (noticed after 1.5 × keep-alive). A
# clean `disconnect()` discards the will; MQTT 5 adds one exception, shown after the
# exercise.
#
# A common pattern: the device publishes `online` (retained) to its status topic, and its
# will is `offline` (retained) on the same topic, so the topic always holds the truth.
#
# Below, the "device" is a separate Python process; we kill it with SIGKILL, which gives it
# no chance to say goodbye. The operating system closes its TCP connection, and Mosquitto
# publishes the will.

# %%
import os
import signal
import subprocess
import sys

DEVICE = """
import os, threading
import paho.mqtt.client as mqtt

topic = os.environ["STATUS_TOPIC"]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=os.environ["DEVICE_ID"])
client.username_pw_set(os.environ["MQTT_USERNAME"], os.environ["MQTT_PASSWORD"])
client.will_set(topic, "offline", qos=1, retain=True)   # left with the broker at CONNECT
connected = threading.Event()
client.on_connect = lambda *args: connected.set()
client.connect(os.environ["MQTT_HOST"], int(os.environ["MQTT_PORT"]), keepalive=10)
client.loop_start()
connected.wait(5)
client.publish(topic, "online", qos=1, retain=True).wait_for_publish(5)
print("online", flush=True)
threading.Event().wait(60)   # 'work' until killed (at most a minute)
"""

status_topic = f"{ROOT}/devices/thermostat/status"
monitor = new_client("monitor")
statuses = Collector(monitor)
start(monitor)
subscribe(monitor, status_topic, qos=1)

device = subprocess.Popen(
    [sys.executable, "-c", DEVICE], stdout=subprocess.PIPE, text=True,
    env={**os.environ, "STATUS_TOPIC": status_topic, "DEVICE_ID": f"thermostat-{RUN}",
         "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
         "MQTT_USERNAME": broker.username, "MQTT_PASSWORD": broker.password})
print("device says:", device.stdout.readline().strip())
statuses.wait_for(1)
os.kill(device.pid, signal.SIGKILL)   # no DISCONNECT: the will is published
print("device exit code:", device.wait(timeout=5))
statuses.wait_for(2)
print("status messages:", statuses.payloads())
device.stdout.close()
stop(monitor)
# Expected output:
# device says: online
# device exit code: -9
# status messages: ['online', 'offline']

# %% [markdown]
# ### Exercise 1 — a sensor's last will
#
# `sensor-1` publishes `online` to `lab11/devices/sensor-1/status`, then crashes: the cell
# stops its network thread and closes its socket without a DISCONNECT. Before it connects,
# give it a last will: the payload `offline`, QoS 1, **retained**, on the same topic.

# %%
sensor_status = "lab11/devices/sensor-1/status"
monitor = new_client("sensor-monitor")
sensor_statuses = Collector(monitor)
start(monitor)
subscribe(monitor, sensor_status, qos=1)

sensor = new_client("sensor-1")
### BEGIN SOLUTION
sensor.will_set(sensor_status, "offline", qos=1, retain=True)
### END SOLUTION
start(sensor, keepalive=10)
sensor.publish(sensor_status, "online", qos=1, retain=True).wait_for_publish(5)
sensor_statuses.wait_for(1)

# The crash: no disconnect(). Stop paho's thread, then drop the TCP connection.
sensor.loop_stop()
sensor.socket().close()
sensor_statuses.wait_for(2, timeout=3)
print("status messages:", sensor_statuses.payloads())
stop(monitor)
# Expected output (solution):
# status messages: ['online', 'offline']
# Expected output (student):
# status messages: ['online']

# %%
self_check("11.last-will", endpoints)
# Expected result (solution):
# ✔ passed  11.last-will: the broker published the last will: 'lab11/devices/sensor-1/status' now retains 'offline'
# Expected result (student):
# ✘ not yet  11.last-will: 'lab11/devices/sensor-1/status' retains 'online', not the will 'offline': the client is still connected, or it said goodbye with disconnect(), which discards the will (except an MQTT 5 DISCONNECT with reason code 0x04) Hint: The broker publishes a client's last will only when the client disappears without saying goodbye: was a will set before connecting, and did the client vanish? (more: hint=2)

# %% [markdown]
# ### MQTT 5: a goodbye that keeps the will
#
# In MQTT 5 a DISCONNECT carries a reason code. `0x00` (*Normal disconnection*) discards
# the will, as in MQTT 3.1.1; `0x04` (*Disconnect with Will Message*) leaves cleanly and
# still asks the broker to publish the will. Two devices with a will on the same topic:

# %%
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

will_topic = f"{ROOT}/devices/goodbye/status"
watcher = new_client("will-watcher")
wills = Collector(watcher)
start(watcher)
subscribe(watcher, will_topic, qos=1)
for name, reason in (("normal", "Normal disconnection"),
                     ("with-will", "Disconnect with will message")):
    leaver = new_client(f"device-{name}", protocol=mqtt.MQTTv5)
    leaver.will_set(will_topic, f"will of device-{name}", qos=1)
    start(leaver)
    leaver.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, reason))
    leaver.loop_stop()
wills.wait_for(1)   # one topic keeps its order: a will of the first device would come first
print("wills published:", wills.payloads())
stop(watcher)
# Expected output:
# wills published: ['will of device-with-will']

# %% [markdown]
# ## Persistent sessions: messages that wait for you (MQTT 3.1.1)
#
# The broker keeps a **session** per client id: its subscriptions and the QoS 1/2 messages
# it has not delivered yet. With `clean_session=True` (paho's default for 3.1.1) the session
# ends when the client disconnects. With `clean_session=False` and a **fixed client id**,
# the broker keeps the session while the client is away, queues the QoS 1 and 2 messages
# that match its subscriptions, and delivers them when the client comes back (CONNACK then
# says *session present*). QoS 0 messages are not queued — that is Mosquitto's default
# (`queue_qos0_messages false`, kept by the kit), not a rule of the protocol: MQTT 3.1.1
# and 5 let a broker queue QoS 0 messages for an absent client too.

# %% [markdown]
# ### Exercise 2 — a worker that misses nothing
#
# The worker has the fixed client id `lab11-worker` and a persistent session. Connect it
# (`start(worker)`), subscribe it to `lab11/jobs/#` at **QoS 1**, and disconnect it
# (`stop(worker)`). The next cell publishes five jobs while it is away.

# %%
worker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lab11-worker",
                     clean_session=False)
worker.username_pw_set(broker.username, broker.password)
### BEGIN SOLUTION
start(worker)
subscribe(worker, "lab11/jobs/#", qos=1)
stop(worker)
### END SOLUTION

# %%
for number in range(1, 6):
    publisher.publish(f"lab11/jobs/job-{number}", f"job {number}", qos=1).wait_for_publish(5)

# %%
self_check("11.persistent-session", endpoints)
# Expected result (solution):
# ✔ passed  11.persistent-session: the session of 'lab11-worker' kept all 5 messages published to 'lab11/jobs/#' while it was away (QoS 1)
# Expected result (student):
# ✘ not yet  11.persistent-session: Mosquitto keeps no session for client id 'lab11-worker': connect it with clean_session=False and subscribe before publishing Hint: Messages published while a subscriber is away are kept only for a session the broker remembers: what makes a session persistent? (more: hint=2)

# %% [markdown]
# The worker comes back with the same client id and `clean_session=False`, and receives
# the jobs without subscribing again. (The self-check resumed the session too, but did not
# acknowledge anything, so the broker sends the jobs again — flagged `dup`.) Afterwards the
# cell ends the session: connecting with `clean_session=True` discards it.

# %%
worker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lab11-worker",
                     clean_session=False)
worker.username_pw_set(broker.username, broker.password)
jobs = Collector(worker)
print("session present:", start(worker))
jobs.wait_for(5, timeout=3)
stop(worker)
print("jobs:", sorted(jobs.payloads()))

cleaner = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lab11-worker",
                      clean_session=True)
cleaner.username_pw_set(broker.username, broker.password)
print("after a clean connect, session present:", start(cleaner))
stop(cleaner)
# Expected output (solution):
# session present: True
# jobs: ['job 1', 'job 2', 'job 3', 'job 4', 'job 5']
# after a clean connect, session present: False
# Expected output (student):
# session present: False
# jobs: []
# after a clean connect, session present: False

# %% [markdown]
# ## MQTT 5: clean start and session expiry
#
# MQTT 5 splits `clean_session` in two: **clean start** (begin with a fresh session, or
# resume) and **session expiry interval** (how long the broker keeps the session after the
# disconnect; 0, the default, means "not at all"). So in MQTT 5, `clean_start=False` alone
# is *not* enough: without an expiry the session still ends at the disconnect.

# %%
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def session_demo(name, expiry):
    """Subscribe (MQTT 5, clean_start=False), go away, publish 3 messages, come back."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry
    client = new_client(name, protocol=mqtt.MQTTv5)
    start(client, clean_start=False, properties=properties)
    subscribe(client, f"{ROOT}/{name}/#", qos=1)
    stop(client)
    for number in range(1, 4):
        publisher.publish(f"{ROOT}/{name}/m", f"message {number}", qos=1).wait_for_publish(5)
    client = new_client(name, protocol=mqtt.MQTTv5)
    received = Collector(client)
    present = start(client, clean_start=False, properties=properties)
    received.wait_for(3, timeout=2 if present else 0.5)
    goodbye = Properties(PacketTypes.DISCONNECT)
    goodbye.SessionExpiryInterval = 0   # the session ends with this disconnect
    client.disconnect(properties=goodbye)
    client.loop_stop()
    print(f"expiry {expiry:>3} s: session present {present!s:5}, received {received.payloads()}")


session_demo("v5-no-expiry", 0)
session_demo("v5-expiry-60", 60)
# Expected output:
# expiry   0 s: session present False, received []
# expiry  60 s: session present True , received ['message 1', 'message 2', 'message 3']

# %% [markdown]
# Where MQTT 3.1.1 and MQTT 5 differ in this lab:
#
# | | MQTT 3.1.1 | MQTT 5 |
# |---|---|---|
# | session | `clean_session` True/False; a kept session lives until the next clean connect | `clean_start` + `SessionExpiryInterval` (seconds) |
# | why a CONNACK, SUBACK or DISCONNECT failed | a few return codes | reason codes (e.g. *Not authorized*, *Session taken over*) |
# | last will | sent at once | may be delayed (`WillDelayInterval`) and expire |
# | will after a DISCONNECT | always discarded | published when the reason code is `0x04` (*Disconnect with Will Message*) |
# | metadata | payload only | user properties, content type, response topic, correlation data (request/reply, like AMQP's `reply_to`) |
# | shared subscriptions | (Mosquitto extension) | `$share/group/filter`: load-balance like competing consumers |
# | message expiry | none | `MessageExpiryInterval` per message |
#
# paho-mqtt 2 speaks both: `mqtt.Client(..., protocol=mqtt.MQTTv5)`. Its callbacks have
# the same signatures for both (that is what `CallbackAPIVersion.VERSION2` gives you).

# %% [markdown]
# ## Sharing the work: shared subscriptions (MQTT 5)
#
# An ordinary subscription is publish/subscribe: **every** subscriber whose filter matches
# gets its own copy of every message. Two workers subscribed to the same tasks would both do
# every task. AMQP solves this with one queue and competing consumers (lab 03). MQTT 5 has
# **shared subscriptions**: a filter written `$share/<group>/<filter>` puts the subscriber in
# a group, and the broker hands each matching message to **one** member of the group, in
# turn. Publishers do not change: they publish to the plain topic.
#
# ### Exercise 3 — two workers, each task done once
#
# Write `start_worker(name)`. It returns a connected MQTT 5 client (`new_client(name,
# protocol=mqtt.MQTTv5)`, then `start` and `subscribe` from the setup) that
#
# - receives the tasks published to `lab11/tasks/<id>`, sharing them with the other workers
#   of the group `lab11-workers`, at QoS 1;
# - answers each task by publishing its own `name` to `lab11/results/<id>` (the same `<id>`)
#   at QoS 1, from its `on_message` callback.
#
# The next cell starts two workers; the self-check publishes ten tasks and counts who did
# what.

# %%
def start_worker(name):
    ### BEGIN SOLUTION
    worker = new_client(name, protocol=mqtt.MQTTv5)

    def on_task(client, userdata, message):
        task_id = message.topic.rsplit("/", 1)[-1]
        client.publish(f"lab11/results/{task_id}", name, qos=1)

    worker.on_message = on_task
    start(worker)
    subscribe(worker, "$share/lab11-workers/lab11/tasks/#", qos=1)
    return worker
    # STUB: return None
    ### END SOLUTION


# %%
workers = [start_worker("worker-a"), start_worker("worker-b")]
self_check("11.shared-workers", endpoints)
# Expected result (solution):
# ✔ passed  11.shared-workers: 10 tasks, each done exactly once, shared by 2 workers (worker-a, worker-b)
# Expected result (student):
# ✘ not yet  11.shared-workers: no result came back for the 10 tasks published to lab11/tasks/<id>: are the workers connected, subscribed to lab11/tasks/#, and answering on lab11/results/<id>? Hint: With an ordinary subscription every subscriber gets every message: that is publish/subscribe. Which kind of MQTT 5 subscription makes the members of a group take turns, like workers on one AMQP queue? (more: hint=2)

# %% [markdown]
# Try it the other way: subscribe the workers with the plain filter `lab11/tasks/#` and run
# the self-check again — every task is done twice. Shared subscriptions are MQTT's
# competing consumers.

# %% [markdown]
# ## The lecture's example: a producer and a consumer
#
# The lecture ran an MQTT producer and consumer as containers next to a Mosquitto
# container, with docker-compose. The kit keeps that example in `docker/mqtt-python/`:
# `producer.py`, `consumer.py` and their shared `common.py` read the broker address and
# credentials from environment variables, reconnect on their own, and stop cleanly on
# SIGTERM. Here is `compose.yaml`:

# %%
from pathlib import Path

EXAMPLE = next((folder / "docker" / "mqtt-python" for folder in [Path.cwd(), *Path.cwd().parents]
                if (folder / "docker" / "mqtt-python" / "compose.yaml").is_file()), None)
print((EXAMPLE / "compose.yaml").read_text())

# %% [markdown]
# Line by line:
#
# - **`services:`** — each entry becomes one container; they share a private network on
#   which a service's name is its host name (`MQTT_HOST: mosquitto`).
# - **`mosquitto-init`** — a one-shot job in the broker's image: `mosquitto_passwd` hashes
#   `MQTT_USERNAME`/`MQTT_PASSWORD` from `.env` into a password file on the `auth` volume,
#   owned by the `mosquitto` user with mode 0600. `${MQTT_PASSWORD:?...}` makes compose
#   refuse to start without a password; `$$` hands a `$` to the container's shell.
# - **`mosquitto`** — `image: eclipse-mosquitto:2.1.2-alpine`, a pinned version, never `latest`.
#   `depends_on ... service_completed_successfully` waits for the password file.
#   `volumes`: `mosquitto.conf` read-only (a listener on 1883, `allow_anonymous false`,
#   the password file, persistence), the password file, and `data` for persistence.
#   `ports: "127.0.0.1:1883:1883"` publishes the port on this machine only.
#   `healthcheck`: healthy means a real client logs in and receives the retained
#   `$SYS/broker/uptime` (`-C 1` one message, `-W 3` at most 3 s), checked every 5 s.
#   `restart: unless-stopped` brings it back after a crash.
# - **`consumer`** — `build:` from `Dockerfile-consumer` (a slim Python image,
#   `requirements.txt`, `python -u consumer.py` so logs are not buffered). It starts once
#   the broker is *healthy*. Its `environment` is everything the script reads: broker,
#   credentials, topic, QoS 1, and a **fixed client id with `MQTT_CLEAN_SESSION: "false"`**
#   — the persistent session of exercise 2, so messages published while it restarts are
#   kept. It is healthy once subscribed (the `READY_FILE`).
# - **`producer`** — starts only when the broker is healthy **and the consumer has
#   subscribed**, so no message is published before anyone listens; sends `MESSAGE_COUNT`
#   messages at QoS 1 and exits (`restart: "no"`).
# - **`volumes:`** — named volumes: `auth` (shared by init and broker) and `data` (sessions
#   and retained messages survive `docker compose down`/`up`).
#
# With Docker: `cp .env.example .env`, choose a password, `docker compose up --build`.

# %% [markdown]
# The *same* two scripts run here as plain processes against the kit's Mosquitto: the only
# difference from the containers is the environment (`MQTT_URL` instead of host, port, user
# and password). The consumer stops after five messages; the producer sends five.

# %%
import json
import tempfile
import time

ready = Path(tempfile.mkdtemp(prefix="lab11-")) / "subscribed"
script_env = {**os.environ, "MQTT_URL": endpoints.mqtt_url, "MQTT_TOPIC": f"{ROOT}/lecture/demo",
              "MQTT_QOS": "1"}
consumer = subprocess.Popen(
    [sys.executable, "-u", "consumer.py"], cwd=EXAMPLE, text=True,
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    env={**script_env, "EXPECTED_COUNT": "5", "READY_FILE": str(ready)})
for _ in range(100):   # what compose's healthcheck does: wait (at most 10 s) for READY_FILE
    if ready.exists() or consumer.poll() is not None:
        break
    time.sleep(0.1)
producer = subprocess.run(
    [sys.executable, "-u", "producer.py"], cwd=EXAMPLE, text=True, capture_output=True,
    env={**script_env, "MESSAGE_COUNT": "5", "MESSAGE_INTERVAL": "0.1"}, timeout=60)
output, _ = consumer.communicate(timeout=30)
print("exit codes: producer", producer.returncode, "consumer", consumer.returncode)
for line in output.splitlines():
    record = json.loads(line)
    print(record["received"], short(record["topic"]), "QoS", record["qos"], record["payload"])
# Expected output:
# exit codes: producer 0 consumer 0
# 1 lecture/demo QoS 1 {'seq': 1, 'text': 'hello from the producer'}
# 2 lecture/demo QoS 1 {'seq': 2, 'text': 'hello from the producer'}
# 3 lecture/demo QoS 1 {'seq': 3, 'text': 'hello from the producer'}
# 4 lecture/demo QoS 1 {'seq': 4, 'text': 'hello from the producer'}
# 5 lecture/demo QoS 1 {'seq': 5, 'text': 'hello from the producer'}

# %% [markdown]
# ## MQTT or AMQP?
#
# | | MQTT (Mosquitto) | AMQP 0-9-1 (RabbitMQ) |
# |---|---|---|
# | address | a topic, created by publishing; levels and wildcards `+`, `#` | exchanges, queues and bindings, declared explicitly |
# | routing | topic filters only | direct, topic (`*`, `#` on `.`-words), fanout, headers |
# | where messages wait | in a client's session (persistent sessions; QoS ≥ 1, QoS 0 only where the broker is set to) | in queues, independent of any client |
# | delivery guarantee | QoS 0 / 1 / 2 per hop | acks, publisher confirms, persistence |
# | many workers sharing one stream | shared subscriptions (MQTT 5) | competing consumers on one queue, prefetch |
# | last value | retained message | (none; a stream or a last-value plugin) |
# | failure notice | last will | none in the protocol: no client sees another's connection drop; RabbitMQ offers exclusive and auto-delete queues, consumer-cancel notifications and the event exchange plugin |
# | overhead | 2-byte header; made for small devices and bad networks | richer frames, channels, properties |
# | typical use | sensors, IoT, mobile, telemetry fan-in, live dashboards | business workflows, task queues, RPC, dead-lettering, back-pressure |
#
# Rules of thumb: many small devices on unreliable links, latest-value state and presence →
# **MQTT**. Work that must be queued, distributed among workers, retried, dead-lettered or
# routed by rules → **AMQP**. Both together is common: RabbitMQ even has an MQTT plugin,
# and a bridge can carry sensor data from Mosquitto into RabbitMQ queues for processing.

# %% [markdown]
# ## Summary
#
# - A last will is published by the broker when a client vanishes without DISCONNECT, or
#   (MQTT 5) disconnects with reason code `0x04`.
# - Persistent sessions (3.1.1: `clean_session=False`; 5: `clean_start=False` plus a session
#   expiry) keep subscriptions and QoS ≥ 1 messages while the client is away (QoS 0 only
#   where the broker is configured to; Mosquitto's default is not to). Unacknowledged
#   messages are re-sent when the client comes back, not during a live connection.
# - A shared subscription (`$share/<group>/<filter>`, MQTT 5) hands each message to one
#   member of the group: MQTT's competing consumers.
# - The lecture's compose example runs the same producer and consumer code as here; only
#   the environment differs.
# - MQTT for devices and state, AMQP for queued work and routing.
