"""mqkit.routing's MQTT topic filters agree with the real Mosquitto on generated cases.

A pool of subscriber clients stays connected for the module. For each case, subscriber ``k``
subscribes to filter ``k`` (QoS 1, waiting for the SUBACK), a publisher sends every topic at
QoS 1 (waiting for each PUBACK), then sends one sentinel to each subscriber's own sentinel
topic. Mosquitto queues a message to its subscribers before it sends the PUBACK, and delivers
each subscriber's queue in order, so once a subscriber has its sentinel it has everything it
will ever get from the case. Payloads carry a per-case token, so stray traffic on the shared
broker (retained messages, other tests) is ignored.

``MQKIT_TEST_ROUTING_EXAMPLES`` scales the number of generated cases.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mqkit.routing import is_valid_topic_filter, topic_matches
from mqkit.urls import BrokerAddress
from tests.integration.test_routing_vs_rabbitmq import report

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("MQKIT_TEST_ROUTING_EXAMPLES", "200"))
SUBSCRIBERS = 4
TIMEOUT = 10.0

LEVELS = ["a", "b", "sport", "", "$a"]
topics = st.lists(st.sampled_from(LEVELS), min_size=1, max_size=4).map("/".join).filter(bool)
filters = st.builds(lambda levels, tail: "/".join(levels + tail),
                    st.lists(st.sampled_from([*LEVELS, "+"]), max_size=4),
                    st.sampled_from([[], ["#"]])).filter(bool)


def _client(address: BrokerAddress, role: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"test-filters-{role}-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(address.username, address.password)
    return client


def _connect(client: mqtt.Client, address: BrokerAddress) -> None:
    client.connect(address.host, address.port)
    # Without it Nagle's algorithm meets delayed ACKs: ~40 ms per batch of publishes.
    # (Mosquitto's own side keeps Nagle unless set_tcp_nodelay is configured: ~90 ms a case.)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Acks:
    """Waits for SUBACK/UNSUBACK by message id (paho calls back on its network thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[int, threading.Event] = {}
        self.codes: dict[int, list] = {}

    def _event(self, mid: int) -> threading.Event:
        with self._lock:
            return self._events.setdefault(mid, threading.Event())

    def on_ack(self, _client, _userdata, mid, reason_codes, _properties) -> None:
        self.codes[mid] = list(reason_codes)
        self._event(mid).set()

    def wait(self, result: tuple) -> list:
        rc, mid = result
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        assert self._event(mid).wait(TIMEOUT), f"no acknowledgement for message id {mid}"
        return self.codes.pop(mid)


class Subscriber:
    """One connected client: what arrived for the current case, and its sentinel."""

    def __init__(self, address: BrokerAddress, index: int) -> None:
        self.client = _client(address, f"sub{index}")
        self.sentinel_topic = f"mqkit-test/sentinel/{uuid.uuid4().hex}"
        self.acks = Acks()
        self.token = ""
        self.received: set[int] = set()
        self.done = threading.Event()
        self.client.on_subscribe = self.acks.on_ack
        self.client.on_unsubscribe = self.acks.on_ack
        self.client.on_message = self._on_message
        _connect(self.client, address)
        self.client.loop_start()
        self.granted(self.subscribe(self.sentinel_topic), self.sentinel_topic)

    def _on_message(self, _client, _userdata, message) -> None:
        token, _, what = message.payload.decode().partition(" ")
        if token != self.token:
            return
        if what == "end":
            if message.topic == self.sentinel_topic:
                self.done.set()
        else:
            self.received.add(int(what))

    def subscribe(self, topic_filter: str) -> tuple:
        """Send a SUBSCRIBE; pass the result to :meth:`granted`."""
        return self.client.subscribe(topic_filter, qos=1)

    def granted(self, sent: tuple, topic_filter: str) -> None:
        codes = self.acks.wait(sent)
        assert [int(code.value) for code in codes] == [1], (topic_filter, codes)

    def unsubscribe(self, topic_filter: str) -> tuple:
        """Send an UNSUBSCRIBE; pass the result to ``acks.wait``."""
        return self.client.unsubscribe(topic_filter)

    def start(self, token: str) -> None:
        self.token, self.received, self.done = token, set(), threading.Event()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Mosquitto:
    """The module's publisher and subscribers."""

    def __init__(self, address: BrokerAddress) -> None:
        self.address = address
        self.publisher = _client(address, "pub")
        _connect(self.publisher, address)
        self.publisher.loop_start()
        self.subscribers = [Subscriber(address, i) for i in range(SUBSCRIBERS)]

    def publish(self, messages: list[tuple[str, str]]) -> None:
        """Publish at QoS 1 and wait until every PUBACK is back."""
        sent = [(topic, self.publisher.publish(topic, payload, qos=1))
                for topic, payload in messages]
        for topic, info in sent:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published(), f"no PUBACK for {topic!r}"

    def deliveries(self, topic_filters: list[str], topics: list[str]) -> list[set[int]]:
        """For each filter, the indexes of the topics its subscriber received."""
        token = uuid.uuid4().hex
        # Requests go out together and are awaited together: each step is one round trip.
        active = list(zip(self.subscribers, topic_filters, strict=False))
        for subscriber, _filter in active:
            subscriber.start(token)
        sent = [subscriber.subscribe(topic_filter) for subscriber, topic_filter in active]
        for (subscriber, topic_filter), request in zip(active, sent, strict=True):
            subscriber.granted(request, topic_filter)
        try:
            self.publish([(topic, f"{token} {index}") for index, topic in enumerate(topics)])
            # Only after every PUBACK: each sentinel is queued behind the case's messages.
            self.publish([(subscriber.sentinel_topic, f"{token} end")
                          for subscriber, _filter in active])
            for subscriber, _filter in active:
                assert subscriber.done.wait(TIMEOUT), "the sentinel did not arrive"
            return [set(subscriber.received) for subscriber, _filter in active]
        finally:
            sent = [subscriber.unsubscribe(topic_filter) for subscriber, topic_filter in active]
            for (subscriber, _filter), request in zip(active, sent, strict=True):
                subscriber.acks.wait(request)

    def close(self) -> None:
        for subscriber in self.subscribers:
            subscriber.close()
        self.publisher.disconnect()
        self.publisher.loop_stop()


@pytest.fixture(scope="module")
def tally(request) -> Iterator[Counter]:
    counts: Counter = Counter()
    yield counts
    summary = ", ".join(f"{name}={n}" for name, n in sorted(counts.items()))
    report(request, f"topic-filter model vs Mosquitto: {summary}")


@pytest.fixture(scope="module")
def mosquitto(wide_brokers) -> Iterator[Mosquitto]:
    """Mosquitto 2.0.11 (process backend) and every Docker line's (2.1.2, 2.0.21)."""
    pool = Mosquitto(wide_brokers.mqtt)
    yield pool
    pool.close()


AWKWARD_FILTERS = ["#", "+", "+/+", "/+", "a/#", "+/#", "$a/#", "a/+"]
AWKWARD_TOPICS = ["a", "/", "a/", "/a", "//", "a/b", "a//b", "$a", "$a/b", "sport/a/b"]


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(topic_filters=st.lists(filters, min_size=1, max_size=SUBSCRIBERS),
       topics=st.lists(topics, min_size=1, max_size=5))
@example(topic_filters=AWKWARD_FILTERS[:4], topics=AWKWARD_TOPICS)
@example(topic_filters=AWKWARD_FILTERS[4:], topics=AWKWARD_TOPICS)
@example(topic_filters=["$a", "+/b", "a/+/#", "/#"], topics=AWKWARD_TOPICS)
def _filter_cases(mosquitto: Mosquitto, tally: Counter, topic_filters, topics) -> None:
    arrived = mosquitto.deliveries(topic_filters, topics)
    for topic_filter, got in zip(topic_filters, arrived, strict=True):
        for index, topic in enumerate(topics):
            match = topic_matches(topic_filter, topic)
            assert match.matched == (index in got), (
                f"filter {topic_filter!r}, topic {topic!r}: broker delivered={index in got}, "
                f"model={match.matched} ({match.reason})")
            tally["filter_topic_pairs"] += 1
    tally["cases"] += 1


def test_filter_model_agrees_with_mosquitto(mosquitto, tally):
    _filter_cases(mosquitto, tally)
    assert tally["cases"] >= min(EXAMPLES, 10)


def _broker_accepts(address: BrokerAddress, topic_filter: str) -> bool:
    """Subscribe with any filter: a SUBACK granting QoS 1 means valid, a disconnect invalid."""
    client = _client(address, "check")
    # paho validates filters itself; skip that so the broker is the one who judges.
    client._filter_wildcard_len_check = lambda _sub: mqtt.MQTT_ERR_SUCCESS
    state: dict[str, object] = {}
    client.on_connect = lambda *_args: state.setdefault("connected", True)
    client.on_subscribe = lambda _c, _u, _mid, codes, _p: state.setdefault("codes", codes)
    client.on_disconnect = lambda *_args: state.setdefault("gone", True)
    # Driven by hand rather than loop_start(): paho's thread would sleep before reconnecting.
    deadline = time.monotonic() + TIMEOUT
    client.connect(address.host, address.port)
    while "connected" not in state:
        assert time.monotonic() < deadline, "no CONNACK"
        client.loop(0.05)
    client.subscribe(topic_filter, qos=1)
    while "codes" not in state and "gone" not in state:
        assert time.monotonic() < deadline, f"neither SUBACK nor disconnect for {topic_filter!r}"
        if client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
            state["gone"] = True
    client.disconnect()
    return [int(code.value) for code in state.get("codes", [])] == [1]


@settings(max_examples=max(EXAMPLES // 2, 10), deadline=None, database=None)
@given(topic_filter=st.text(alphabet="ab/+#$", min_size=1, max_size=6))
@example(topic_filter="a/#/b")
@example(topic_filter="a+")
@example(topic_filter="#/")
@example(topic_filter="a/#/")
@example(topic_filter="$share/g/a/+")
def _validity_cases(address: BrokerAddress, tally: Counter, topic_filter: str) -> None:
    assume("\x00" not in topic_filter)
    assert is_valid_topic_filter(topic_filter) == _broker_accepts(address, topic_filter), \
        topic_filter
    tally["validity_cases"] += 1


def test_filter_validation_agrees_with_mosquitto(wide_brokers, tally):
    _validity_cases(wide_brokers.mqtt, tally)
    assert tally["validity_cases"] >= 10


def test_clients_cannot_publish_to_sys(mosquitto):
    # Not a filter rule: Mosquitto drops what clients publish under $SYS (it PUBACKs anyway).
    subscriber = mosquitto.subscribers[0]
    token = uuid.uuid4().hex
    subscriber.start(token)
    subscriber.granted(subscriber.subscribe("$SYS/mqkit-test/#"), "$SYS/mqkit-test/#")
    try:
        mosquitto.publish([(f"$SYS/mqkit-test/{token}", f"{token} 0")])
        mosquitto.publish([(subscriber.sentinel_topic, f"{token} end")])
        assert subscriber.done.wait(TIMEOUT)
    finally:
        subscriber.acks.wait(subscriber.unsubscribe("$SYS/mqkit-test/#"))
    assert topic_matches("$SYS/mqkit-test/#", f"$SYS/mqkit-test/{token}").matched
    assert subscriber.received == set()
