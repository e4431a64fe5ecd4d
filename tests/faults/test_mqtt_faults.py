"""MQTT under faults: offline subscribers, a broker restart, two clients with one id."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from mqkit.clients import mqtt_client, mqtt_connect, stop
from mqkit.exceptions import DuplicateClientId
from mqkit.mqtt_session import watch_session
from tests.faults.ledger import Ledger

pytestmark = pytest.mark.integration


def _topic(kind: str) -> str:
    return f"faults/{kind}/{uuid.uuid4().hex[:8]}"


class Subscriber:
    """A persistent-session (clean_session=False) QoS 1 subscriber feeding a ledger."""

    def __init__(self, url: str, client_id: str, ledger: Ledger) -> None:
        self.url, self.client_id, self.ledger = url, client_id, ledger
        self.arrived = threading.Condition()
        self.client: mqtt.Client | None = None

    def on_message(self, _client, _userdata, message) -> None:
        with self.arrived:
            self.ledger.receive(message.payload.decode())
            self.arrived.notify_all()

    def connect(self, subscribe: str | None = None) -> None:
        client = mqtt_client(self.url, client_id=self.client_id, clean_session=False)
        client.on_message = self.on_message
        mqtt_connect(client=client, key=f"faults-{self.client_id}")
        if subscribe is not None:
            subscribed = threading.Event()
            client.on_subscribe = lambda *_args: subscribed.set()
            client.subscribe(subscribe, qos=1)
            assert subscribed.wait(10), "no SUBACK"
        self.client = client

    def disconnect(self) -> None:
        stop(f"faults-{self.client_id}")

    def wait_for(self, count: int, timeout: float = 15) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.ledger.received) >= count, timeout)


def _publish_qos1(url: str, topic: str, ledger: Ledger, ids: list[str],
                  retain: bool = False) -> None:
    publisher = mqtt_connect(url, client_id=f"faults-pub-{uuid.uuid4().hex[:8]}")
    try:
        for message_id in ids:
            ledger.send(message_id)
            info = publisher.publish(topic, message_id.encode(), qos=1, retain=retain)
            info.wait_for_publish(10)
            if info.is_published():  # PUBACK: the broker has it
                ledger.confirm(message_id)
    finally:
        stop(publisher._client_id.decode())


def test_qos1_messages_wait_for_a_reconnecting_persistent_subscriber(brokers):
    topic, ledger = _topic("offline"), Ledger()
    subscriber = Subscriber(brokers.mqtt_url, f"faults-sub-{uuid.uuid4().hex[:8]}", ledger)
    subscriber.connect(subscribe=topic)
    subscriber.disconnect()  # offline: the broker queues QoS 1 messages for the session
    _publish_qos1(brokers.mqtt_url, topic, ledger, [f"q{n}" for n in range(20)])
    subscriber.connect()  # same id, clean_session=False: no new SUBSCRIBE needed
    try:
        assert subscriber.wait_for(20), ledger.summary()
    finally:
        subscriber.disconnect()
    ledger.check()
    assert len(ledger.confirmed) == 20


def test_retained_and_queued_messages_survive_a_mosquitto_restart(fault_backend, faulty):
    topic, ledger = _topic("restart"), Ledger()
    subscriber = Subscriber(faulty.mqtt_url, f"faults-sub-{uuid.uuid4().hex[:8]}", ledger)
    subscriber.connect(subscribe=f"{topic}/queued")
    subscriber.disconnect()
    _publish_qos1(faulty.mqtt_url, f"{topic}/queued", ledger, [f"p{n}" for n in range(10)])
    _publish_qos1(faulty.mqtt_url, f"{topic}/state", ledger, ["retained-1"], retain=True)
    endpoints = fault_backend.restart("mosquitto")  # graceful: Mosquitto saves its database
    subscriber.url = endpoints.mqtt_url
    subscriber.connect(subscribe=f"{topic}/state")  # queued ones arrive, then the retained
    try:
        assert subscriber.wait_for(11), ledger.summary()
    finally:
        subscriber.disconnect()
    ledger.check()
    assert sorted(ledger.received) == sorted([f"p{n}" for n in range(10)] + ["retained-1"])


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["v3.1.1", "v5"])
def test_duplicate_client_id_is_reported_instead_of_a_reconnect_fight(brokers, protocol):
    client_id = f"faults-dup-{uuid.uuid4().hex[:8]}"
    first = mqtt_client(brokers.mqtt_url, client_id=client_id, protocol=protocol)
    mqtt_connect(client=first, key=f"{client_id}-first")
    connects = []
    first.on_connect = lambda *_args: connects.append(time.monotonic())
    watch = watch_session(first, window=5.0)
    try:
        second = mqtt_client(brokers.mqtt_url, client_id=client_id, protocol=protocol)
        mqtt_connect(client=second, key=f"{client_id}-second")
        assert watch.wait(20), f"not detected after {watch.disconnects} disconnects"
        with pytest.raises(DuplicateClientId, match=client_id) as info:
            watch.check()
        assert info.value.client_id == client_id
        assert "Hint:" in str(info.value)
        # The fight is over: the first client stays away, the second stays connected.
        deadline = time.monotonic() + 15  # the second may be in paho's reconnect back-off
        while time.monotonic() < deadline and not second.is_connected():
            time.sleep(0.1)
        assert second.is_connected()
        reconnects = len(connects)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and second.is_connected():
            time.sleep(0.1)  # observing a steady state for 3 s, not waiting for readiness
        assert second.is_connected()
        assert len(connects) == reconnects
        assert not first.is_connected()
    finally:
        stop(f"{client_id}-second")
        stop(f"{client_id}-first")
