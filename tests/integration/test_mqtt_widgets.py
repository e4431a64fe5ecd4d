"""The MQTT widgets and the checks of labs 10 and 11, against the real Mosquitto mqkit started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from mqkit import clients
from mqkit.exceptions import DuplicateClientId
from mqkit.grading import get_check
from mqkit.widgets import MQTTInbox, MQTTPublisher, MQTTPublisherModel

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def paho_threads(client_id: str = "") -> list[threading.Thread]:
    """Live paho loop threads (of one client id, or all of them)."""
    return [t for t in threading.enumerate() if t.is_alive() and (
        t.name == f"paho-mqtt-client-{client_id}" if client_id
        else t.name.startswith("paho-mqtt-client-"))]


@pytest.fixture
def publisher(brokers):
    model = MQTTPublisherModel(brokers, key=None)
    yield model
    model.close()


def test_publisher_to_inbox_with_wildcards_exactly_once(brokers, publisher):
    root = unique("t")
    inbox = MQTTInbox([f"{root}/sensors/+/temperature", f"{root}/alerts/#"], brokers,
                      limit=20, key=unique("inbox"))
    try:
        sent = []
        for number in range(500):
            topic = (f"{root}/sensors/room{number % 7}/temperature" if number % 2
                     else f"{root}/alerts/fire/floor{number % 3}")
            result = publisher.publish(topic, f"m{number}", qos=1)
            assert result.ok, result
            assert result.is_acknowledged
            sent.append((topic, f"m{number}"))
        # Not matched by either filter: must never arrive.
        assert publisher.publish(f"{root}/sensors/room1/humidity", "no", qos=1).ok
        assert publisher.publish(f"{root}/sensors/a/b/temperature", "no", qos=1).ok
        assert inbox.model.wait_for(500, timeout=20)
        marker = publisher.publish(f"{root}/alerts/end", "end", qos=1)
        assert marker.ok
        assert inbox.model.wait_for(501, timeout=10)
        assert inbox.model.count == 501  # the two others did not arrive, nothing twice
        kept = list(inbox.model.received)
        assert len(kept) == 20  # bounded memory: only the last 20 kept
        assert kept[-1].text == "end"
        got = [(m.topic, m.text) for m in kept[:-1]]
        assert got == sent[-19:]
        assert all(m.qos == 1 and not m.dup for m in kept)
        inbox.render()
        assert inbox.counter.value.startswith("501 received, showing the last 20 (running)")
    finally:
        inbox.close()


def test_inbox_sees_every_message_in_order(brokers, publisher):
    root = unique("t")
    seen: list[str] = []
    inbox = MQTTInbox(f"{root}/#", brokers, key=unique("inbox"), limit=5,
                      on_message=lambda m: seen.append(m.text))
    try:
        for number in range(500):
            publisher.publish(f"{root}/n/{number % 5}", str(number), qos=1)
        assert inbox.model.wait_for(500, timeout=20)
        assert seen == [str(n) for n in range(500)]
    finally:
        inbox.close()


def test_recreating_an_inbox_with_the_same_key_stops_the_old_thread(brokers, publisher):
    root, key = unique("t"), unique("inbox")
    first = MQTTInbox(f"{root}/#", brokers, key=key)
    first_id = first.model.client_id
    assert len(paho_threads(first_id)) == 1
    before = len(paho_threads())
    second = MQTTInbox(f"{root}/#", brokers, key=key)  # what a re-run cell does
    try:
        assert paho_threads(first_id) == []
        assert len(paho_threads(second.model.client_id)) == 1
        assert len(paho_threads()) == before  # one loop thread replaced the other
        assert not first.model.is_running
        assert clients.workers()[key] is second.model
        publisher.publish(f"{root}/x", "only to the second", qos=1)
        assert second.model.wait_for(1, timeout=5)
        assert first.model.count == 0
    finally:
        second.close()
    assert paho_threads(second.model.client_id) == []
    assert key not in clients.workers()


def test_two_inboxes_with_one_client_id_stop_fighting_and_say_so(brokers):
    # Two notebooks (or an old cell and a new one) using one client id: the broker throws
    # one out each time the other reconnects. The session watch ends the fight and the
    # inbox shows the cause instead of flickering.
    root, client_id = unique("t"), unique("dup")
    first = MQTTInbox(f"{root}/#", brokers, key=unique("inbox"), client_id=client_id)
    second = MQTTInbox(f"{root}/#", brokers, key=unique("inbox"), client_id=client_id)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                isinstance(inbox.model.error, DuplicateClientId) for inbox in (first, second)):
            time.sleep(0.1)  # polling the widgets' state, bounded by the deadline
        errors = [inbox.model.error for inbox in (first, second)]
        duplicates = [e for e in errors if isinstance(e, DuplicateClientId)]
        assert duplicates, errors
        assert duplicates[0].client_id == client_id
        assert "client id" in str(duplicates[0])
    finally:
        first.close()
        second.close()


def test_recreating_a_publisher_widget_disconnects_the_old_one(brokers):
    key = unique("pub")
    first = MQTTPublisher(brokers, topic=unique("t") + "/a", key=key)
    old_id = first.model.client_id
    second = MQTTPublisher(brokers, topic=unique("t") + "/b", key=key)
    try:
        assert paho_threads(old_id) == []
        assert first.publish() is None
        assert "ERROR ConnectionLost" in first.output.outputs[-1]["text"]
        result = second.publish()
        assert result is not None
        assert result.ok
        assert "published to" in second.output.outputs[-1]["text"]
    finally:
        first.close()
        second.close()


def test_retained_message_shows_up_for_a_new_subscription(brokers, publisher):
    topic = unique("t") + "/config"
    assert publisher.publish(topic, "keep me", qos=1, retain=True).ok
    inbox = MQTTInbox(topic, brokers, key=unique("inbox"))
    try:
        assert inbox.model.wait_for(1, timeout=5)
        (message,) = inbox.model.received
        assert message.retain
        assert message.text == "keep me"
    finally:
        inbox.close()
        publisher.publish(topic, b"", qos=1, retain=True)  # clears it


def test_publisher_widget_reports_an_invalid_topic(brokers):
    widget = MQTTPublisher(brokers, topic="a/+/b", key=unique("pub"))
    try:
        assert widget.publish() is None
        assert "ConfigError" in widget.output.outputs[-1]["text"]
        widget.topic.value = unique("t") + "/ok"
        widget.qos.value = 2
        result = widget.publish()
        assert result is not None
        assert result.is_acknowledged
        assert "PUBCOMP" in str(result)
    finally:
        widget.close()


# -- the checks of labs 10 and 11 ------------------------------------------------------


def test_retained_check_fails_then_passes(brokers, publisher):
    topic = unique("t") + "/greeting"
    check = get_check("10.retained-message")
    result = check.run(brokers, topic=topic, payload="hi")
    assert result.status.value == "failed", result
    publisher.publish(topic, "hi", qos=1)  # not retained
    assert check.run(brokers, topic=topic, payload="hi").status.value == "failed"
    publisher.publish(topic, "wrong", qos=1, retain=True)
    assert "expected 'hi'" in check.run(brokers, topic=topic, payload="hi").message
    publisher.publish(topic, "hi", qos=1, retain=True)
    assert check.run(brokers, topic=topic, payload="hi").is_passed
    publisher.publish(topic, b"", qos=1, retain=True)


def _worker(brokers, client_id: str, topic_filter: str, qos: int) -> None:
    client = clients.mqtt_client(brokers, client_id=client_id, clean_session=False)
    done = threading.Event()
    client.on_subscribe = lambda *_args: done.set()
    clients.mqtt_connect(client=client, key=unique("loop"))
    client.subscribe(topic_filter, qos)
    assert done.wait(5)
    client.disconnect()
    client.loop_stop()


def test_persistent_session_check(brokers, publisher):
    check = get_check("11.persistent-session")
    root, client_id = unique("jobs"), unique("worker")
    params = {"client_id": client_id, "topic_filter": f"{root}/#", "expected": 5}
    assert "keeps no session" in check.run(brokers, **params).message
    _worker(brokers, client_id, f"{root}/#", qos=0)
    for number in range(5):
        publisher.publish(f"{root}/job", f"job {number}", qos=1)
    assert check.run(brokers, **params).status.value == "failed"  # QoS 0: nothing kept
    _worker(brokers, client_id, f"{root}/#", qos=1)
    for number in range(5):
        publisher.publish(f"{root}/job", f"job {number}", qos=1)
    first = check.run(brokers, **params)
    assert first.is_passed, first
    again = check.run(brokers, **params)  # the check acknowledged nothing
    assert again.is_passed, again
    # Clean up: a clean session removes what the broker kept for this id.
    client = clients.mqtt_client(brokers, client_id=client_id, clean_session=True)
    clients.mqtt_connect(client=client, key=unique("loop"))
    client.disconnect()
    client.loop_stop()


WILL_CLIENT = """
import sys, threading, paho.mqtt.client as mqtt
host, port, user, password, topic = sys.argv[1:6]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=sys.argv[6])
client.username_pw_set(user, password)
client.will_set(topic, "offline", qos=1, retain=True)
connected = threading.Event()
client.on_connect = lambda *a: connected.set()
client.connect(host, int(port))
client.loop_start()
connected.wait(5)
client.publish(topic, "online", qos=1, retain=True).wait_for_publish(5)
print("online", flush=True)
threading.Event().wait(30)
"""


def test_last_will_check_sees_a_killed_client(brokers, publisher):
    check = get_check("11.last-will")
    topic = unique("t") + "/status"
    assert check.run(brokers, topic=topic, payload="offline").status.value == "failed"
    address = brokers.mqtt
    process = subprocess.Popen(
        [sys.executable, "-c", WILL_CLIENT, address.host, str(address.port), address.username,
         address.password, topic, unique("sensor")], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "online"
        still_online = check.run(brokers, topic=topic, payload="offline")
        assert "retains 'online'" in still_online.message
        os.kill(process.pid, signal.SIGKILL)
        process.wait(5)
        # The broker notices the closed socket at once and publishes the will.
        offline = threading.Event()
        inbox = MQTTInbox(topic, brokers, key=unique("inbox"),
                          on_message=lambda m: m.text == "offline" and offline.set())
        try:
            assert offline.wait(5)
        finally:
            inbox.close()
        result = check.run(brokers, topic=topic, payload="offline")
        assert result.is_passed, result
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        process.stdout.close()
        publisher.publish(topic, b"", qos=1, retain=True)
