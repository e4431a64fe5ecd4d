"""MQTT checks: they look at the real Mosquitto through a short-lived paho client of their own.

MQTT brokers have no management API, so a check *behaves* like a client and watches what the
broker does:

* a retained message is there when a new subscription receives it with the retain flag;
* a persistent session kept every message published while its subscriber was away when a
  client resuming that session (same client id, clean session off) receives them all at
  QoS >= 1. The check never acknowledges them, so the broker keeps them and sends them again
  on the next resume: running the check changes nothing;
* a last will arrived when the will's topic holds the will payload as its retained message
  (only the broker publishes a will, when its client vanished without a DISCONNECT);
* topic filters receive what they should when a fresh subscriber per filter receives the
  wanted probe topics and none of the others (:func:`deliveries` publishes the probes; the
  wildcard predict-then-publish of :mod:`mqkit.grading.predict_mqtt` uses it too).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mqkit.endpoints import Endpoints
from mqkit.grading.registry import NotYet, check

#: Seconds a check waits for the broker's answers (CONNACK, SUBACK, the messages).
TIMEOUT = 5.0
#: Seconds without a new message after which a check stops waiting for more.
QUIET = 0.5


@dataclass(frozen=True)
class Received:
    """One message a check received."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool


class _Probe:
    """A paho client of a check: connected, looping in the background, always stopped."""

    def __init__(self, endpoints: Endpoints, client_id: str | None,
                 clean_session: bool = True, acknowledge: bool = False) -> None:
        from mqkit.clients import mqtt_client

        self.client = mqtt_client(endpoints, client_id=client_id or
                                  f"mqkit-check-{secrets.token_hex(4)}",
                                  clean_session=clean_session)
        # By default acknowledge nothing: a check leaves a kept session as it was. Probes of a
        # clean session acknowledge, so unacknowledged retained messages (a `#` filter gets
        # every one) cannot fill the broker's in-flight window and hold the probes back.
        self.client.manual_ack_set(not acknowledge)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.granted: list[Any] = []
        self.session_present = False
        self.refused = ""
        self.messages: list[Received] = []
        self._arrived = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any,
                      properties: Any) -> None:
        self.granted = list(reason_codes)
        self.subscribed.set()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            self.refused = str(reason_code)
        else:
            self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._arrived:
            self.messages.append(Received(message.topic, message.payload, message.qos,
                                          bool(message.retain), bool(message.dup)))
            self._arrived.notify_all()

    def connect(self) -> None:
        address = self.client._mqkit_address  # set by mqkit.clients.mqtt_client
        self.client.connect(address.host, address.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(TIMEOUT):
            raise TimeoutError(f"no CONNACK from Mosquitto within {TIMEOUT} s")
        if self.refused:
            raise ConnectionRefusedError(f"Mosquitto refused the check's client: {self.refused}")

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        self.client.subscribe(topic_filter, qos)
        if not self.subscribed.wait(TIMEOUT):
            raise TimeoutError(f"no SUBACK from Mosquitto within {TIMEOUT} s")
        if any(getattr(code, "is_failure", False) for code in self.granted):
            raise NotYet(f"Mosquitto refused the subscription {topic_filter!r}: "
                         f"{', '.join(str(code) for code in self.granted)}")

    def wait_until(self, condition: Any, deadline: float) -> bool:
        """Wait (until the ``time.monotonic()`` ``deadline``) for ``condition(messages)``."""
        with self._arrived:
            return self._arrived.wait_for(lambda: condition(self.messages),
                                          max(0.0, deadline - time.monotonic()))

    def collect(self, wanted: int) -> list[Received]:
        """Messages until ``wanted`` arrived or none came for :data:`QUIET` seconds."""
        deadline = time.monotonic() + TIMEOUT
        with self._arrived:
            seen = -1
            while len(self.messages) < wanted and len(self.messages) != seen:
                seen = len(self.messages)
                self._arrived.wait(min(QUIET, max(0.0, deadline - time.monotonic())))
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def _probe(endpoints: Endpoints, client_id: str | None = None,
           clean_session: bool = True, acknowledge: bool = False) -> Iterator[_Probe]:
    probe = _Probe(endpoints, client_id, clean_session, acknowledge)
    try:
        probe.connect()
        yield probe
    finally:
        probe.close()


def _retained(endpoints: Endpoints, topic: str) -> Received | None:
    """The retained message of ``topic`` as a new subscription receives it, or ``None``."""
    with _probe(endpoints) as probe:
        probe.subscribe(topic, 1)
        # A retained message is sent right after the SUBACK, or not at all.
        retained = [m for m in probe.collect(1) if m.retain and m.topic == topic]
    return retained[0] if retained else None


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")


# -- the checks of labs 10 and 11 (functions reusable with other topics) ---------------


@check("10.retained-message", "a retained message",
       hint=("A new subscriber gets a topic's last message at once only if the "
              'broker was asked to keep it: which publish flag is that?',
             'Publish the message with the retain flag set (QoS 1 so it surely '
              'arrives).',
             'client.publish(topic, payload, qos=1, retain=True)'),
       params={"topic": "lab10/config/greeting", "payload": "Hello, MQTT!"}, read_only=True)
def retained_message(endpoints: Endpoints, topic: str, payload: str | None = None) -> str:
    """``topic`` has a retained message (with ``payload``, when given)."""
    found = _retained(endpoints, topic)
    if found is None:
        raise NotYet(f"a new subscription to {topic!r} received no retained message")
    if payload is not None and _text(found.payload) != payload:
        raise NotYet(f"the retained message of {topic!r} is {_text(found.payload)!r}, "
                     f"expected {payload!r}")
    return f"a new subscription to {topic!r} receives the retained message " \
           f"{_text(found.payload)!r}"


@check("11.persistent-session", "a persistent session kept every QoS 1 message",
       hint=('Messages published while a subscriber is away are kept only for a '
              'session the broker remembers: what makes a session persistent?',
             'Connect the worker with a fixed client id and the clean-session flag '
              'off, subscribe at QoS 1, disconnect, then publish the jobs at QoS 1.',
             'mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, '
              "client_id='lab11-worker', clean_session=False); "
              'client.subscribe(topic, qos=1)'),
       points=2,
       params={"client_id": "lab11-worker", "topic_filter": "lab11/jobs/#", "expected": 5})
def session_kept_messages(endpoints: Endpoints, client_id: str, topic_filter: str,
                          expected: int) -> str:
    """The persistent session of ``client_id`` holds ``expected`` messages at QoS >= 1.

    The check resumes the session (clean session off), counts what arrives without
    acknowledging it, and disconnects: the broker keeps the messages for the next resume.
    """
    from mqkit.routing import topic_matches

    with _probe(endpoints, client_id, clean_session=False) as probe:
        is_present = probe.session_present
        messages = probe.collect(expected) if is_present else []
    if not is_present:
        # Connecting created an empty session for that id; remove it again.
        with _probe(endpoints, client_id, clean_session=True):
            pass
        raise NotYet(f"Mosquitto keeps no session for client id {client_id!r}: connect it "
                     "with clean_session=False and subscribe before publishing")
    mine = [m for m in messages if topic_matches(topic_filter, m.topic)]
    if not mine:
        raise NotYet(f"the session of {client_id!r} holds no message for {topic_filter!r}: "
                     "was it subscribed at QoS 1 or 2 before the messages were published?")
    low = [m for m in mine if m.qos == 0]
    if low:
        raise NotYet(f"{len(low)} message(s) came at QoS 0: subscribe and publish at QoS 1")
    if len(mine) < expected:
        raise NotYet(f"the session of {client_id!r} kept {len(mine)} of {expected} messages "
                     f"for {topic_filter!r}")
    return (f"the session of {client_id!r} kept all {len(mine)} messages published to "
            f"{topic_filter!r} while it was away (QoS {min(m.qos for m in mine)})")


@check("11.last-will", "the last will arrived",
       hint=("The broker publishes a client's last will only when the client "
              'disappears without saying goodbye: was a will set before connecting, '
              'and did the client vanish?',
             "Set the will (topic, payload 'offline', QoS 1, retained) before "
              'connect(); then end the client abruptly (kill its process or drop its '
              'socket), not with disconnect().',
             "client.will_set(topic, 'offline', qos=1, retain=True)  # before "
              'client.connect(...)'),
       points=2, params={"topic": "lab11/devices/sensor-1/status", "payload": "offline"})
def last_will_arrived(endpoints: Endpoints, topic: str, payload: str) -> str:
    """The broker published the last will: ``topic`` retains ``payload``.

    The will must be set with ``retain=True`` for the check to see it after the fact.
    """
    found = _retained(endpoints, topic)
    if found is None:
        raise NotYet(f"{topic!r} has no retained message: set the will with retain=True, "
                     "connect, then end the client abruptly")
    if _text(found.payload) != payload:
        raise NotYet(f"{topic!r} retains {_text(found.payload)!r}, not the will "
                     f"{payload!r}: the client is still connected, or it said goodbye with "
                     "disconnect(), which discards the will (except an MQTT 5 DISCONNECT "
                     "with reason code 0x04)")
    return f"the broker published the last will: {topic!r} now retains {payload!r}"



# -- topic filters against probe topics (lab 10's wildcard exercise) --------------------

#: Seconds to wait, once every subscriber holds what the model expects, for deliveries the
#: model did not expect (the broker has the last word).
SETTLE = 0.3


def _token_indexes(messages: Sequence[Received], token: str) -> set[int]:
    found = set()
    for message in messages:
        mine, _, index = _text(message.payload).partition(" ")
        if mine == token and index.isdigit():
            found.add(int(index))
    return found


def deliveries(endpoints: Endpoints, filters: Sequence[str],
               topics: Sequence[str]) -> list[set[int]]:
    """For each filter, the indexes of the topics that a fresh subscriber with it received.

    One new client per filter subscribes (QoS 1, waiting for the SUBACK); one more publishes
    each topic at QoS 1, never retained, and waits for every PUBACK. Each payload carries a
    token of this call, so other traffic and retained messages on the broker are ignored, and
    nothing stays behind. MQTT orders messages per topic only, so no end marker on another
    topic can say "that was all": each subscriber is given (at most :data:`TIMEOUT` seconds
    in all) until it holds as many messages as mqkit's model of topic matching expects, then
    :data:`SETTLE` seconds more for any the model did not expect. The result is what the
    broker delivered, whatever the model says.

    Raises:
        ConfigError: a filter or a topic is invalid (Mosquitto would disconnect the client).
        NotYet: Mosquitto refused a subscription.
        TimeoutError: the broker did not answer in time.
    """
    from mqkit.routing import topic_matches, validate_topic_filter, validate_topic_name

    for topic_filter in filters:
        validate_topic_filter(topic_filter)
    for topic in topics:
        validate_topic_name(topic)
    token = secrets.token_hex(6)
    expected = [sum(topic_matches(f, t).matched for t in topics) for f in filters]
    with contextlib.ExitStack() as stack:
        subscribers = [stack.enter_context(_probe(endpoints, acknowledge=True))
                       for _filter in filters]
        for probe, topic_filter in zip(subscribers, filters, strict=True):
            probe.subscribe(topic_filter, 1)
        publisher = stack.enter_context(_probe(endpoints, acknowledge=True))
        sent = [publisher.client.publish(topic, f"{token} {index}", qos=1)
                for index, topic in enumerate(topics)]
        deadline = time.monotonic() + TIMEOUT
        for topic, info in zip(topics, sent, strict=True):
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError(f"no PUBACK from Mosquitto for {topic!r} within {TIMEOUT} s")
        deadline = time.monotonic() + TIMEOUT
        for probe, count in zip(subscribers, expected, strict=True):
            probe.wait_until(lambda messages, n=count: len(_token_indexes(messages, token)) >= n,
                             deadline)
        time.sleep(SETTLE)
        return [_token_indexes(probe.messages, token) for probe in subscribers]


def _quoted(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


#: What lab 10's heating controller must receive and must not: ``{floor}`` and ``{room}``
#: become names that are new on every run, so only wildcards pass, not a list of topics.
HEATING_WANTED = (
    "lab10/house/ground/kitchen/temperature",
    "lab10/house/{floor}/{room}/temperature",
    "lab10/house/attic/temperature",
    "/lab10/house/ground/hall/temperature",
)
HEATING_UNWANTED = (
    "lab10/house/{floor}/{room}/humidity",
    "lab10/house/{floor}/{room}/radiator/temperature",
    "lab10/house/outside/temperature",
    "lab10/house/attic/humidity",
    "/lab10/house/ground/hall/humidity",
)


@check("10.wildcard-filters", "topic filters for the heating controller",
       hint=("Which wildcard matches exactly one level, and which matches every level "
             "below it, humidity and radiators included? A topic that starts with a slash "
             "begins with an empty level: only a filter that starts with one matches it.",
             "Write one filter per shape of topic: floor and room as two single-level "
             "wildcards; the attic's topic, which has one level less; the hall thermostat's "
             "topic with its leading slash. A multi-level wildcard brings humidity and the "
             "radiators too.",
             "heating_filters = ['lab10/house/+/+/temperature', "
             "'lab10/house/attic/temperature', '/lab10/house/+/+/temperature']"),
       points=2,
       params={"config_topic": "lab10/config/heating", "wanted": HEATING_WANTED,
               "unwanted": HEATING_UNWANTED})
def wildcard_filters(endpoints: Endpoints, config_topic: str, wanted: Sequence[str],
                     unwanted: Sequence[str]) -> str:
    """The filters retained as JSON on ``config_topic`` receive ``wanted`` and no ``unwanted``.

    The check plays the device that reads its configuration: it takes the retained message of
    ``config_topic`` (a JSON list of filters, or one filter), subscribes a fresh client with
    each filter on the real Mosquitto and publishes every probe topic (see
    :func:`deliveries`). ``{floor}`` and ``{room}`` in a probe become new names each run.
    """
    from mqkit.exceptions import ConfigError
    from mqkit.routing import validate_topic_filter

    found = _retained(endpoints, config_topic)
    if found is None:
        raise NotYet(f"nothing is retained on {config_topic!r}: the heating controller finds "
                     "no configuration, so it subscribes to nothing")
    try:
        filters = json.loads(_text(found.payload))
    except ValueError:
        filters = None
    if isinstance(filters, str):
        filters = [filters]
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise NotYet(f"the configuration on {config_topic!r} is not a JSON list of filters: "
                     f"{_text(found.payload)[:80]!r}")
    if not filters:
        raise NotYet(f"the configuration on {config_topic!r} lists no filter: the heating "
                     "controller subscribes to nothing and receives no temperature")
    for topic_filter in filters:
        try:
            validate_topic_filter(topic_filter)
        except ConfigError as exc:
            raise NotYet(exc.message) from None
    names = {"floor": f"floor-{secrets.token_hex(2)}", "room": f"room-{secrets.token_hex(2)}"}
    probes = [topic.format(**names) for topic in (*wanted, *unwanted)]
    received = deliveries(endpoints, filters, probes)
    through = {index: [f for f, got in zip(filters, received, strict=True) if index in got]
               for index in range(len(probes))}
    missing = [probes[i] for i in range(len(wanted)) if not through[i]]
    extra = [f"{probes[i]!r} (through {_quoted(through[i])})"
             for i in range(len(wanted), len(probes)) if through[i]]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"did not receive {_quoted(missing)}")
        if extra:
            parts.append("received " + "; ".join(extra[:3])
                         + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
                         + ", which it must not")
        raise NotYet(f"subscribed with {_quoted(filters, 5)}, the heating controller "
                     + "; it ".join(parts))
    count = "1 filter brings" if len(filters) == 1 else f"{len(filters)} filters bring"
    return (f"the {count} the heating controller every temperature it needs "
            f"({len(wanted)} probe topics) and none of the {len(unwanted)} other readings")
