# %% [markdown]
# # Lab 10 — MQTT with Mosquitto: the basics
#
# **Learning goals**
#
# - connect to Mosquitto with paho-mqtt 2 (`CallbackAPIVersion.VERSION2`), publish and
#   subscribe;
# - organise topics in levels and subscribe with the wildcards `+` and `#`, including empty
#   levels, a leading `/` and topics that start with `$`;
# - predict which subscriptions receive a message, then let Mosquitto prove you right or
#   wrong, and write the filters a device needs;
# - choose a QoS (0, 1, 2) and watch the packets each one exchanges;
# - keep the last value of a topic with a **retained** message;
# - watch messages move with the MQTT inbox and publisher widgets;
# - read the lecture's docker-compose example next to the kit's, and say why each change was
#   made.
#
# Lab 11 continues with sessions, the last will, running the example's producer and consumer,
# and MQTT vs AMQP.
#
# **Estimated time:** 50 minutes.

# %% [markdown]
# ## Setup
#
# `mqkit.start_brokers()` gives the address and credentials of the kit's Mosquitto
# (`endpoints.mqtt`: host, port, user name, password). Every run of this lab uses its own
# topic prefix and client ids (`RUN`), so running it again never mixes with an earlier run.

# %%
import json
import threading
import uuid

import paho.mqtt.client as mqtt

import mqkit
from mqkit.grading import predict_mqtt, self_check

endpoints = mqkit.start_brokers()
broker = endpoints.mqtt          # .host, .port, .username, .password
RUN = uuid.uuid4().hex[:6]       # unique per run: topics and client ids never collide
ROOT = f"lab10/run-{RUN}"        # the topic prefix of this run
print("Mosquitto at", f"{broker.host}:{broker.port}")
# Expected output:
# Mosquitto at 127.0.0.1:PORT

# %% [markdown]
# ## Connecting with paho-mqtt 2
#
# A paho `Client` needs the **callback API version** (paho 2 changed the callback
# signatures; `VERSION2` is the current one), a **client id** (the broker keeps one session
# per id) and, with Mosquitto 2, a user name and password. `connect()` opens the TCP
# connection and sends CONNECT; the broker's answer, CONNACK, arrives in the **network
# loop**. `loop_start()` runs that loop in a background thread; the cell waits on an event
# with a timeout, so it always ends.

# %%
connected = threading.Event()
connack = {}


def on_connect(client, userdata, flags, reason_code, properties):
    # paho calls this in its network thread: note the answer, print it in the cell.
    connack.update(reason_code=reason_code, session_present=flags.session_present)
    connected.set()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"first-{RUN}")
client.username_pw_set(broker.username, broker.password)
client.on_connect = on_connect
client.connect(broker.host, broker.port, keepalive=60)
client.loop_start()
connected.wait(timeout=5)
client.disconnect()   # DISCONNECT: a polite goodbye
client.loop_stop()    # ends the background thread
print("CONNACK:", connack["reason_code"], "| session present:", connack["session_present"])
# Expected output:
# CONNACK: Success | session present: False

# %% [markdown]
# The rest of the lab uses four small helpers built from exactly these calls: `new_client`
# (a client with a unique id and the credentials), `start` (connect, loop in the
# background, wait for CONNACK), `subscribe` (wait for the SUBACK) and `stop`.
# `Collector` gathers the messages a client receives: paho calls `on_message` in its own
# thread, so it only appends to a list, and the cell waits (with a timeout) for the count.

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

# %% [markdown]
# Start clean: the exercises use fixed topics (the self-checks look for them), so remove what
# an earlier run left on the broker: the retained messages of `lab10/config/greeting` and
# `lab10/config/heating` (an empty retained payload deletes one).

# %%
cleaner = new_client("cleaner")
start(cleaner)
for topic in ("lab10/config/greeting", "lab10/config/heating"):
    cleaner.publish(topic, "", qos=1, retain=True).wait_for_publish(5)
stop(cleaner)

# %% [markdown]
# ## Publish and subscribe
#
# A subscriber tells the broker which topics it wants; a publisher sends a message to a
# topic; the broker forwards it to every matching subscription. Nobody declares a queue or
# an exchange: the **topic** is the only address. The subscriber must subscribe first: a
# plain message published to a topic nobody subscribes to is dropped.

# %%
subscriber = new_client("subscriber")
inbox = Collector(subscriber)
start(subscriber)
print("SUBACK:", subscribe(subscriber, f"{ROOT}/greetings", qos=1))

publisher = new_client("publisher")
start(publisher)
publisher.publish(f"{ROOT}/greetings", "Hello, MQTT!", qos=1)
inbox.wait_for(1)
for message in inbox.messages:
    print(short(message.topic), "->", message.payload)
# Expected output:
# SUBACK: Granted QoS 1
# greetings -> b'Hello, MQTT!'

# %% [markdown]
# ## Topic levels and wildcards
#
# Topics are paths of **levels** separated by `/`: `home/kitchen/temperature`. A
# subscription's *filter* may use two wildcards:
#
# | wildcard | matches | example filter | matches | does not match |
# |---|---|---|---|---|
# | `+` | exactly one level | `home/+/temperature` | `home/kitchen/temperature` | `home/kitchen/fridge/temperature` |
# | `#` | any number of levels, last only | `home/#` | `home`, `home/kitchen`, `home/a/b/c` | `office/kitchen` |
#
# Below, one subscriber per filter, and five messages: which subscriber gets which?
#
# When has a subscriber got everything? MQTT keeps order only *per topic* (one publisher's
# messages to one topic, at one QoS), not across topics: a last message on some `end` topic
# may overtake the others, so it proves nothing. Each subscriber counts instead: it waits
# (at most 5 s) until it holds as many messages as its filter matches topics, counted with
# `topic_matches`, mqkit's model of MQTT matching (more about it below).

# %%
from mqkit.routing import topic_matches

filters = ["home/+/temperature", "home/#", "home/kitchen/+", "+/+/temperature"]
topics = ["home/kitchen/temperature", "home/kitchen/fridge/temperature", "home/garden/humidity",
          "office/desk/temperature", "home"]

watchers = {}
for number, topic_filter in enumerate(filters):
    watcher = new_client(f"watcher{number}")
    watchers[topic_filter] = (watcher, Collector(watcher))
    start(watcher)
    subscribe(watcher, f"{ROOT}/{topic_filter}", qos=1)

for topic in topics:
    publisher.publish(f"{ROOT}/{topic}", "21.5", qos=1)

for topic_filter, (watcher, collector) in watchers.items():
    collector.wait_for(sum(topic_matches(topic_filter, topic).matched for topic in topics))
    print(f"{topic_filter:20}", [short(m.topic) for m in collector.messages])
stop(*(watcher for watcher, _ in watchers.values()))
# Expected output:
# home/+/temperature   ['home/kitchen/temperature']
# home/#               ['home/kitchen/temperature', 'home/kitchen/fridge/temperature', 'home/garden/humidity', 'home']
# home/kitchen/+       ['home/kitchen/temperature']
# +/+/temperature      ['home/kitchen/temperature', 'office/desk/temperature']

# %% [markdown]
# The **topic-filter explainer** tells, for a topic, which filters match and *why*. It
# uses mqkit's model of MQTT matching, which the kit's tests check against the real
# Mosquitto. Edit the filters or the topic and watch the verdicts change.

# %%
from mqkit.routing import topic_matches
from mqkit.widgets import MQTTInbox, MQTTPublisher, TopicFilterExplainer

print(topic_matches("home/+/temperature", "home/kitchen/fridge/temperature").reason)
print(topic_matches("home/#", "home").reason)
# Expected output:
# level 3: the filter wants `temperature`, the topic has `fridge`
# `#` matches zero levels here (it also matches the parent `home`)

# %%
TopicFilterExplainer(filters + ["#", "home/kitchen/fridge/+"],
                     "home/kitchen/fridge/temperature")

# %% [markdown]
# ### Three corners of the rules
#
# - **Empty levels.** A level may be empty: `home//temperature` has three levels, the middle
#   one empty, and `+` matches it.
# - **A leading `/`.** `/home/temperature` is another topic than `home/temperature`: its
#   first level is empty. `home/#` does not match it; `+/home/temperature` and `#` do.
# - **Topics starting with `$`.** MQTT keeps them for the broker: Mosquitto publishes its own
#   statistics under `$SYS/...`, and it acknowledges what a client publishes there, then
#   delivers it to nobody. A filter that *starts* with a wildcard (`#`, `+/...`) never
#   matches a `$` topic; a subscriber names the first level instead: `$SYS/#`. Mosquitto
#   lets clients publish to other `$` topics, and the same rule holds for them.
#
# Try them in the explainer above: give it the topic `home//temperature`, then
# `/home/kitchen/temperature`, then `$SYS/broker/uptime`.

# %% [markdown]
# ### Exercise 1 — predict, then publish
#
# Five subscribers, one per filter in `subscriptions`, and six messages, one per topic in
# `topics`. For each topic, add a line that gives the set of filters whose subscriber will
# receive it, in the form `prediction['a/topic'] = {'a/filter', 'another/filter'}`; a topic
# that reaches nobody stays at `set()`. Decide first, with the rules above; the explainer
# can help afterwards.
#
# The next cell then subscribes one new client per filter on the real Mosquitto, publishes
# every topic (QoS 1, not retained), and marks each cell of the table ✔ (you were right) or
# ✘. These topics carry no run prefix: a leading `/` or a `$` must come first. The cell
# tells its own messages apart by their payload instead.

# %%
subscriptions = ["sensors/+/temp", "sensors/#", "+/+/temp", "#", "$lab10/#"]
topics = ["sensors/kitchen/temp", "sensors/kitchen/fridge/temp", "sensors//temp",
          "/sensors/temp", "sensors", "$lab10/kitchen/temp"]

# %%
prediction = {topic: set() for topic in topics}   # nobody, for now
### BEGIN SOLUTION
prediction["sensors/kitchen/temp"] = {"sensors/+/temp", "sensors/#", "+/+/temp", "#"}
prediction["sensors/kitchen/fridge/temp"] = {"sensors/#", "#"}
prediction["sensors//temp"] = {"sensors/+/temp", "sensors/#", "+/+/temp", "#"}
prediction["/sensors/temp"] = {"+/+/temp", "#"}
prediction["sensors"] = {"sensors/#", "#"}
prediction["$lab10/kitchen/temp"] = {"$lab10/#"}
### END SOLUTION

# %%
predict_mqtt.predict_then_publish(endpoints, subscriptions, prediction)
# Expected result (solution):
# prediction vs Mosquitto: which subscriptions received each topic
# each cell: did the subscription get it? · what you predicted · ✔ right / ✘ wrong
# topic                        sensors/+/temp    sensors/#         +/+/temp          #                 $lab10/#
# sensors/kitchen/temp         yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔  no · you: no ✔
# sensors/kitchen/fridge/temp  no · you: no ✔    yes · you: yes ✔  no · you: no ✔    yes · you: yes ✔  no · you: no ✔
# sensors//temp                yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔  yes · you: yes ✔  no · you: no ✔
# /sensors/temp                no · you: no ✔    no · you: no ✔    yes · you: yes ✔  yes · you: yes ✔  no · you: no ✔
# sensors                      no · you: no ✔    yes · you: yes ✔  no · you: no ✔    yes · you: yes ✔  no · you: no ✔
# $lab10/kitchen/temp          no · you: no ✔    no · you: no ✔    no · you: no ✔    no · you: no ✔    yes · you: yes ✔
# 6 of 6 topics predicted right.
# Expected result (student):
# prediction vs Mosquitto: which subscriptions received each topic
# each cell: did the subscription get it? · what you predicted · ✔ right / ✘ wrong
# topic                        sensors/+/temp   sensors/#        +/+/temp         #                $lab10/#
# sensors/kitchen/temp         yes · you: no ✘  yes · you: no ✘  yes · you: no ✘  yes · you: no ✘  no · you: no ✔
# sensors/kitchen/fridge/temp  no · you: no ✔   yes · you: no ✘  no · you: no ✔   yes · you: no ✘  no · you: no ✔
# sensors//temp                yes · you: no ✘  yes · you: no ✘  yes · you: no ✘  yes · you: no ✘  no · you: no ✔
# /sensors/temp                no · you: no ✔   no · you: no ✔   yes · you: no ✘  yes · you: no ✘  no · you: no ✔
# sensors                      no · you: no ✔   yes · you: no ✘  no · you: no ✔   yes · you: no ✘  no · you: no ✔
# $lab10/kitchen/temp          no · you: no ✔   no · you: no ✔   no · you: no ✔   no · you: no ✔   yes · you: no ✘
# ✘ 'sensors/kitchen/temp': Mosquitto delivered it to sensors/+/temp, sensors/#, +/+/temp, #; you predicted no subscription
# ✘ 'sensors/kitchen/fridge/temp': Mosquitto delivered it to sensors/#, #; you predicted no subscription
# ✘ 'sensors//temp': Mosquitto delivered it to sensors/+/temp, sensors/#, +/+/temp, #; you predicted no subscription
# ✘ '/sensors/temp': Mosquitto delivered it to +/+/temp, #; you predicted no subscription
# ✘ 'sensors': Mosquitto delivered it to sensors/#, #; you predicted no subscription
# ✘ '$lab10/kitchen/temp': Mosquitto delivered it to $lab10/#; you predicted no subscription
# 0 of 6 topics predicted right.

# %% [markdown]
# ## Quality of service: 0, 1 and 2
#
# | QoS | promise | packets for one message |
# |---|---|---|
# | 0 | at most once: fire and forget | PUBLISH |
# | 1 | at least once: kept until acknowledged, may arrive twice | PUBLISH, PUBACK |
# | 2 | exactly once: a four-step handshake | PUBLISH, PUBREC, PUBREL, PUBCOMP |
#
# A QoS 1 or 2 message that is not acknowledged is sent again (flagged `dup`) only when the
# client reconnects and resumes its session: MQTT 5 forbids re-sending it within a live
# connection, and with MQTT 3.1.1 neither Mosquitto (since 1.5) nor paho 2 does it (lab 11
# resumes a session). So "at least once" holds as long as the session lives.
#
# The QoS applies to each *hop*: publisher → broker, and broker → subscriber. paho reports
# every packet it sends or receives to an `on_log` callback; the cell below keeps only the
# PUBLISH family and shows both hops for each QoS (→ sent, ← received).

# %%
PACKETS = {"PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP"}


class PacketLog:
    """The PUBLISH-family packets a client sends (→) and receives (←), from paho's log."""

    def __init__(self, client):
        self.packets = []
        self._changed = threading.Condition()
        client.on_log = self._on_log

    def _on_log(self, client, userdata, level, text):
        words = text.split()
        if len(words) > 1 and words[0] in ("Sending", "Received") and words[1] in PACKETS:
            with self._changed:
                self.packets.append(("→ " if words[0] == "Sending" else "← ") + words[1])
                self._changed.notify_all()

    def wait_for(self, count, timeout=5):
        with self._changed:
            return self._changed.wait_for(lambda: len(self.packets) >= count, timeout)


sender, receiver = new_client("qos-sender"), new_client("qos-receiver")
start(sender)
start(receiver)
subscribe(receiver, f"{ROOT}/qos", qos=2)
sent_log, received_log = PacketLog(sender), PacketLog(receiver)
for qos, packets in ((0, 1), (1, 2), (2, 4)):
    sent_log.packets.clear()
    received_log.packets.clear()
    sender.publish(f"{ROOT}/qos", f"QoS {qos} message", qos=qos)
    sent_log.wait_for(packets)
    received_log.wait_for(packets)
    print(f"QoS {qos}  publisher:  {' '.join(sent_log.packets)}")
    print(f"       subscriber: {' '.join(received_log.packets)}")
stop(sender, receiver)
# Expected output:
# QoS 0  publisher:  → PUBLISH
#        subscriber: ← PUBLISH
# QoS 1  publisher:  → PUBLISH ← PUBACK
#        subscriber: ← PUBLISH → PUBACK
# QoS 2  publisher:  → PUBLISH ← PUBREC → PUBREL ← PUBCOMP
#        subscriber: ← PUBLISH → PUBREC ← PUBREL → PUBCOMP

# %% [markdown]
# The broker delivers at the **lower** of the publish QoS and the subscription QoS: a
# QoS 2 message reaches a QoS 0 subscriber at QoS 0. And `publish()` returns at once; for
# QoS 1 and 2, `info.wait_for_publish(timeout)` waits until the broker acknowledged it.

# %%
low = new_client("low")
low_inbox = Collector(low)
start(low)
subscribe(low, f"{ROOT}/downgrade", qos=0)
info = publisher.publish(f"{ROOT}/downgrade", "sent at QoS 2", qos=2)
info.wait_for_publish(5)
print("acknowledged by the broker:", info.is_published())
low_inbox.wait_for(1)
print("delivered at QoS", low_inbox.messages[0].qos)
stop(low)
# Expected output:
# acknowledged by the broker: True
# delivered at QoS 0

# %% [markdown]
# ## Retained messages
#
# Normally a message goes to the subscribers that exist *now*. With `retain=True` the broker
# also keeps it as the topic's **last known value** and hands it to every future subscriber
# right after the SUBACK, flagged `retain`. Good for state ("door: open", a configuration);
# a new retained message replaces the old one, and an empty retained payload deletes it.

# %%
publisher.publish(f"{ROOT}/door", "open", qos=1, retain=True).wait_for_publish(5)

late = new_client("late")
late_inbox = Collector(late)
start(late)
subscribe(late, f"{ROOT}/door", qos=1)   # subscribes AFTER the publish
late_inbox.wait_for(1)
message = late_inbox.messages[0]
print(message.payload, "retain flag:", message.retain)

publisher.publish(f"{ROOT}/door", "closed", qos=1, retain=True).wait_for_publish(5)
late_inbox.wait_for(2)
message = late_inbox.messages[1]
print(message.payload, "retain flag:", message.retain, "(a live message)")
stop(late)
# An empty retained payload deletes the retained message.
publisher.publish(f"{ROOT}/door", "", qos=1, retain=True).wait_for_publish(5)
# Expected output:
# b'open' retain flag: True
# b'closed' retain flag: False (a live message)

# %% [markdown]
# ### Exercise 2 — a retained greeting
#
# Publish the retained message `Hello, MQTT!` to the topic `lab10/config/greeting` (QoS 1),
# and wait until the broker acknowledged it. Use the `publisher` client.

# %% tags=["solution"]
publisher.publish("lab10/config/greeting", "Hello, MQTT!", qos=1,
                  retain=True).wait_for_publish(5)

# %%
self_check("10.retained-message", endpoints)
# Expected result (solution):
# ✔ passed  10.retained-message: a new subscription to 'lab10/config/greeting' receives the retained message 'Hello, MQTT!'
# Expected result (student):
# ✘ not yet  10.retained-message: a new subscription to 'lab10/config/greeting' received no retained message Hint: A new subscriber gets a topic's last message at once only if the broker was asked to keep it: which publish flag is that? (more: hint=2)

# %% [markdown]
# ### Exercise 3 — filters for a heating controller
#
# A heating controller reads its configuration from a retained message, as many devices
# do: when it starts, it subscribes to `lab10/config/heating` and gets the latest
# configuration at once. The configuration is the list of topic filters it subscribes
# with, as JSON.
#
# The house's sensors publish to `lab10/house/<floor>/<room>/<measurement>`, such as
# `lab10/house/ground/kitchen/temperature`. Floors and rooms change, so the filters cannot
# list them. Write `heating_filters` so that the controller receives
#
# - every room's temperature, on every floor;
# - the attic's temperature, `lab10/house/attic/temperature` (the attic has no rooms);
# - the old hall thermostat's, whose firmware puts a `/` in front:
#   `/lab10/house/ground/hall/temperature`;
#
# and nothing else: no humidity, not the radiators' own sensors
# (`lab10/house/ground/kitchen/radiator/temperature`), not the outside sensor
# (`lab10/house/outside/temperature`).
#
# The cell publishes your list, retained, as the configuration. The self-check then plays
# the controller: it subscribes with your filters on Mosquitto and publishes readings,
# with floor and room names that are new on every run.

# %%
heating_filters = []
### BEGIN SOLUTION
heating_filters = ["lab10/house/+/+/temperature", "lab10/house/attic/temperature",
                   "/lab10/house/+/+/temperature"]
### END SOLUTION
publisher.publish("lab10/config/heating", json.dumps(heating_filters), qos=1,
                  retain=True).wait_for_publish(5)

# %%
self_check("10.wildcard-filters", endpoints)
# Expected result (solution):
# ✔ passed  10.wildcard-filters: the 3 filters bring the heating controller every temperature it needs (4 probe topics) and none of the 5 other readings
# Expected result (student):
# ✘ not yet  10.wildcard-filters: the configuration on 'lab10/config/heating' lists no filter: the heating controller subscribes to nothing and receives no temperature Hint: Which wildcard matches exactly one level, and which matches every level below it, humidity and radiators included? A topic that starts with a slash begins with an empty level: only a filter that starts with one matches it. (more: hint=2)

# %% [markdown]
# ## Watch messages move: MQTT widgets
#
# The **inbox** is a subscription with its own client; its network loop runs in the
# background (`loop_start`), it shows the last messages and counts all of them, and
# re-running the cell replaces it instead of adding a second one. Its filters carry this
# run's prefix (`ROOT`), like every topic of this lab: `{ROOT}/sensors/+/temperature` and
# `{ROOT}/alerts/#`, shown in full in its title.
#
# The **publisher** sends what its form holds. Its topic starts as this run's
# `{ROOT}/sensors/kitchen/temperature`, printed in full above the form. Publish it as it is,
# then edit only the levels after the prefix: `…/sensors/garden/temperature` reaches the
# inbox too, `…/sensors/kitchen/humidity` matches none of its filters,
# `…/alerts/fire/floor2` does; then try QoS 2 and the *retain* box. Keep the prefix: a plain
# `sensors/kitchen/temperature` reaches the broker, but no filter of this inbox.

# %%
live = MQTTInbox([f"{ROOT}/sensors/+/temperature", f"{ROOT}/alerts/#"], endpoints,
                 key="lab10-inbox")
live

# %%
form = MQTTPublisher(endpoints, topic=f"{ROOT}/sensors/kitchen/temperature", payload="21.5",
                     qos=1, key="lab10-publisher")
print("the form publishes to", form.topic.value)   # keep the prefix, edit what follows
form

# %% [markdown]
# Code can drive both. Three messages, of which the inbox's filters match two:

# %%
for topic, payload in (("sensors/kitchen/temperature", "22.0"), ("sensors/kitchen/humidity", "40"),
                       ("alerts/fire/floor1", "smoke!")):
    result = form.model.publish(f"{ROOT}/{topic}", payload, qos=1)
    print(short(result.topic), "acknowledged:", result.is_acknowledged)
live.model.wait_for(2, timeout=5)
print("the inbox received", live.model.count, "messages:",
      [(short(m.topic), m.text) for m in live.model.received])
# Expected output:
# sensors/kitchen/temperature acknowledged: True
# sensors/kitchen/humidity acknowledged: True
# alerts/fire/floor1 acknowledged: True
# the inbox received 2 messages: [('sensors/kitchen/temperature', '22.0'), ('alerts/fire/floor1', 'smoke!')]

# %% [markdown]
# ## The lecture's docker-compose example, next to the kit's
#
# The lecture ran Mosquitto, a producer and a consumer as three containers with
# docker-compose. The kit keeps that example in `docker/mqtt-python/`, with six changes. To
# compare, `docker/mqtt-python/lecture/` holds a compose file and a consumer Dockerfile with
# the lecture's choices: the `toke/mosquitto` image, `version: '3.7'`, a `./app` volume, a
# plain `depends_on` list and a `python:3.9-slim-buster` base. These cells only read the
# files: no Docker needed. First the lecture's compose file, then the kit's:

# %%
import difflib
import re
from pathlib import Path

EXAMPLE = next((folder / "docker" / "mqtt-python" for folder in [Path.cwd(), *Path.cwd().parents]
                if (folder / "docker" / "mqtt-python" / "compose.yaml").is_file()), None)


def read(name):
    """A file of docker/mqtt-python ('' where the kit's folders are not above this notebook)."""
    return (EXAMPLE / name).read_text() if EXAMPLE else ""


def show(name):
    """Print a file of docker/mqtt-python with line numbers."""
    print(f"==> docker/mqtt-python/{name}")
    if EXAMPLE is None:
        print("    not found: open this notebook in the kit's labs/ folder to see the file")
    for number, line in enumerate(read(name).splitlines(), start=1):
        print(f"{number:3}  {line}")
    print()


show("lecture/docker-compose.yml")
show("compose.yaml")

# %% [markdown]
# The choices side by side, read from the files (the broker's listener from the kit's
# `mosquitto.conf`; the lecture configures none, so the image's default applies):

# %%
lecture = read("lecture/docker-compose.yml") + read("lecture/Dockerfile-consumer")
kit = read("compose.yaml") + read("Dockerfile-consumer")
kit_config = read("mosquitto.conf")


def found(pattern, text, absent="(none)"):
    match = re.search(pattern, text, re.MULTILINE)
    return " ".join(match.groups()) if match else absent


rows = [
    ("broker image", found(r"^\s+image: (\S+)", lecture), found(r"^\s+image: (\S+)", kit)),
    ("version: key", found(r"^version: (\S+)", lecture), found(r"^version: (\S+)", kit)),
    ("code in /app", found(r"^\s+- (\S+:/app)$", lecture, "COPY"),
     found(r"^\s+- (\S+:/app)$", kit, "COPY in the image")),
    ("clients wait for", "container started" if re.search(r"depends_on:\n\s+- ", lecture)
     else "(none)", found(r"mosquitto:\n\s+condition: (\w+)", kit)),
    ("broker listener", "image default",
     found(r"^(listener \d+)$", kit_config) + ", " + found(r"^(allow_anonymous \w+)$", kit_config)),
    ("ports", found(r'^\s+- "(\S+)"$', lecture), found(r'^\s+- "(\S+)"$', kit)),
    ("Python base", found(r"^FROM (python:\S+)", lecture),
     found(r"^ARG BASE=(python:\S+)", kit)),
]
if EXAMPLE:   # the files were found (see the cell above)
    print(f"{'':18}{'lecture':26}kit")
    for what, old, new in rows:
        print(f"{what:18}{old:26}{new}")
# Expected output:
#                   lecture                   kit
# broker image      toke/mosquitto            eclipse-mosquitto:2.1.2-alpine
# version: key      '3.7'                     (none)
# code in /app      ./app:/app                COPY in the image
# clients wait for  container started         service_healthy
# broker listener   image default             listener 1883, allow_anonymous false
# ports             1883:1883                 127.0.0.1:${MQTT_HOST_PORT:-1883}:1883
# Python base       python:3.9-slim-buster    python:3.12.12-slim

# %% [markdown]
# ### Each change, and why
#
# 1. **The maintained `eclipse-mosquitto` image.** The Mosquitto project maintains the
#    official `eclipse-mosquitto` image and updates it with its releases. `toke/mosquitto`
#    belongs to the Docker Hub account `toke`, not to the project, and with no tag the image
#    is `latest`: whatever that account pushed last. The kit pins
#    `eclipse-mosquitto:2.1.2-alpine`, the image mqkit runs itself (Mosquitto 2.1's official
#    images are all Alpine-based and carry `-alpine` in their tags).
# 2. **No `version:` key.** The Compose Specification, which today's `docker compose`
#    follows, calls the top-level `version:` obsolete: Compose ignores it, and recent releases
#    warn about it. Debian's docker-compose 1.29 accepts the kit's file without it too (the
#    kit's tests run it).
# 3. **The volume.** The lecture's text means "the project folder, seen as `/app` in the
#    container": that is `.:/app`. `./app:/app` mounts a sub-folder named `app`. When there
#    is none, Docker creates an empty one and mounts it over `/app`, hiding the code the image
#    put there. With Docker Engine 20.10, the kit's consumer image then fails with
#    `python: can't open file '/app/consumer.py'`. The kit mounts no code at all: its
#    Dockerfiles copy the scripts into the image, so the image runs anywhere. A `.:/app`
#    volume is a convenience while you edit the scripts (no rebuild), best kept in a
#    `compose.override.yaml` of your own.
# 4. **`depends_on` does not wait for readiness.** A plain `depends_on` list only orders the
#    start: compose starts the consumer once the broker's *container* has started, not once
#    Mosquitto accepts connections. So the kit gives the broker a `healthcheck` (a real client
#    logs in and receives `$SYS/broker/uptime`), and the clients
#    `depends_on: {mosquitto: {condition: service_healthy}}`. The producer also waits until the
#    consumer is healthy, that is, subscribed: no message goes out before anyone listens.
# 5. **Mosquitto 2 needs an explicit listener and authentication.** Seen on Mosquitto 2.0.11:
#    with no `listener` in its configuration it logs "Starting in local only mode" and
#    listens on the container's own loopback address only, out of the other containers'
#    reach. With `listener 1883` it listens on all the container's interfaces and refuses an
#    anonymous `mosquitto_sub` ("not authorised"). So `mosquitto.conf` has `listener 1883`,
#    `allow_anonymous false` and a `password_file`, which the one-shot `mosquitto-init`
#    service writes from the user name and password in `.env`. And the port is published on
#    this machine's `127.0.0.1` only, not to the whole network as `"1883:1883"` does.
# 6. **The end-of-life base image.** `python:3.9-slim-buster` is Debian 10 "buster", out of
#    long-term support since June 2024, with Python 3.9, out of support since October 2025:
#    neither gets security fixes. The kit pins a current `python:3.12.12-slim`.

# %% [markdown]
# ### The Dockerfiles, line by line
#
# The lecture's consumer Dockerfile, then the kit's:

# %%
show("lecture/Dockerfile-consumer")
show("Dockerfile-consumer")

# %% [markdown]
# The lecture's file:
#
# - `FROM python:3.9-slim-buster`: the end-of-life base (change 6).
# - `WORKDIR /app`: creates `/app` and makes it the working folder of what follows and of
#   the running container.
# - `COPY . /app`: copies the *whole* folder into the image, a `.env` with a password too
#   unless a `.dockerignore` leaves it out; and since any edited file changes this step,
#   `pip install` runs again after it.
# - `RUN pip install paho-mqtt`: no version, so each build takes the newest paho. Today that
#   is paho 2, where `mqtt.Client()` still works but warns that callback API version 1 is
#   deprecated (seen with 2.2.0).
# - `CMD ["python", "consumer.py"]`: runs as `root`, and Python buffers its output when
#   it is not writing to a terminal, so `docker compose logs` shows the prints late.
#
# The kit's file:
#
# - lines 3–4, `ARG BASE=python:3.12.12-slim` and `FROM ${BASE}`: the base is a build
#   argument with a pinned default; a build may name another base (the kit's CI does, below).
# - line 6, `WORKDIR /app`: as in the lecture.
# - line 7, `COPY requirements.txt .`: the requirements alone first. Docker caches each step,
#   so editing a script later does not re-run `pip`.
# - line 8, `RUN pip install --no-cache-dir -r requirements.txt`: `paho-mqtt==2.2.0`, pinned;
#   `--no-cache-dir` keeps pip's download cache out of the image.
# - line 9, `COPY common.py consumer.py ./`: only the code this image runs.
# - lines 12–13, `RUN useradd --system --no-create-home app` and `USER app`: the program runs
#   as an unprivileged user, not as `root`.
# - line 16, `CMD ["python", "-u", "consumer.py"]`: the exec form makes Python process 1,
#   which receives `docker stop`'s SIGTERM (the script stops cleanly on it); `-u` turns
#   buffering off, so each line shows up in the logs at once.
#
# The producer's Dockerfile is the same but for the script it copies and runs:

# %%
consumer_lines = read("Dockerfile-consumer").splitlines()
producer_lines = read("Dockerfile-producer").splitlines()
for line in difflib.unified_diff(consumer_lines, producer_lines, "Dockerfile-consumer",
                                 "Dockerfile-producer", n=0, lineterm=""):
    print(line)
# Expected output:
# --- Dockerfile-consumer
# +++ Dockerfile-producer
# @@ -1 +1 @@
# -# The consumer image: a pinned slim Python, paho-mqtt from requirements.txt, two scripts.
# +# The producer image: a pinned slim Python, paho-mqtt from requirements.txt, two scripts.
# @@ -9 +9 @@
# -COPY common.py consumer.py ./
# +COPY common.py producer.py ./
# @@ -16 +16 @@
# -CMD ["python", "-u", "consumer.py"]
# +CMD ["python", "-u", "producer.py"]

# %%
show("Dockerfile-producer")

# %% [markdown]
# ### How the kit's CI runs it
#
# The kit's tests run this example end to end wherever Docker runs
# (`tests/docker/test_compose_example.py`): `docker compose up`, then the consumer's log
# must show every message the producer sent, then `docker compose down -v`. `compose.yaml`
# puts the containers on a bridge network and publishes port 1883. The kit's CI machine
# allows neither: no traffic to private address ranges (a bridge network gives containers
# such addresses), and the machine's own Mosquitto holds 1883. So CI adds an override file,
# `compose.ci.yaml`:
#
# - `network_mode: host` for every container (`none` for the one-shot init);
# - the broker on a free port of `127.0.0.1`, and `MQTT_HOST=127.0.0.1` for the clients;
# - the producer and consumer images built from the same Dockerfiles, with `ARG BASE`
#   pointing at a local Python image (CI machines without a registry build one).
#
# Debian's docker-compose 1.29 refuses published ports on a host-network container, and an
# override can only add to `ports:`, never remove it; so the test merges both files with
# `docker-compose config`, drops `ports:` and runs `up` on the result.

# %%
show("compose.ci.yaml")

# %% [markdown]
# ## Summary
#
# - paho-mqtt 2: `mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=...)`,
#   `username_pw_set`, `connect`, `loop_start` … `disconnect`, `loop_stop`.
# - A topic is a path of levels; filters use `+` (one level) and `#` (the rest). A level
#   may be empty (`a//b`), a leading `/` starts with an empty level, and a filter starting
#   with a wildcard never matches a topic starting with `$` (`$SYS/...`).
# - QoS 0 = PUBLISH; QoS 1 = PUBLISH/PUBACK (at least once); QoS 2 = PUBLISH, PUBREC,
#   PUBREL, PUBCOMP (exactly once); the delivered QoS is the lower of the two sides; an
#   unacknowledged message is re-sent on reconnect, within the session.
# - Order holds per topic, not across topics: count what you expect, don't wait for a
#   marker on another topic.
# - `retain=True` keeps a topic's last value for future subscribers; an empty payload
#   removes it.
# - The MQTT inbox and publisher widgets show messages move; a topic reaches the inbox only
#   with the prefix its filters carry.
# - The kit's compose example departs from the lecture's: the maintained, pinned
#   `eclipse-mosquitto`; no `version:`; code copied into the image, not a `./app` volume; a
#   healthcheck with `condition: service_healthy`, because `depends_on` alone does not wait
#   for readiness; a listener and a password, which Mosquitto 2 needs; a supported Python
#   base.
#
# Next, lab 11: persistent sessions, the last will, the lecture's compose example, and MQTT
# vs AMQP.
