"""The process backend against real RabbitMQ and Mosquitto processes."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pika
import pika.exceptions
import pytest

from mqkit.brokers.ports import is_listening
from mqkit.brokers.process import ProcessBackend
from mqkit.brokers.readiness import probe_amqp, probe_mqtt
from mqkit.config import Settings
from mqkit.exceptions import AuthenticationError, BrokerNotRunning
from mqkit.urls import BrokerAddress
from tests.helpers import listening_sockets, mqtt_round_trip, require

pytestmark = pytest.mark.integration


def test_amqp_round_trip(brokers):
    queue = f"test-{uuid.uuid4().hex}"
    connection = pika.BlockingConnection(pika.URLParameters(brokers.amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, exclusive=True)
        channel.basic_publish("", queue, b"hello amqp")
        method, _props, body = next(channel.consume(queue, inactivity_timeout=5))
        assert body == b"hello amqp"
        channel.basic_ack(method.delivery_tag)
    finally:
        connection.close()


def test_mqtt_round_trip(brokers):
    assert mqtt_round_trip(brokers.mqtt, f"test/{uuid.uuid4().hex}") == b"hello mqtt"


def test_guest_and_anonymous_are_refused(brokers):
    amqp = brokers.amqp
    guest = BrokerAddress("amqp", amqp.host, amqp.port, "guest", "guest", "/")
    with pytest.raises(AuthenticationError, match="guest"):
        probe_amqp(guest)
    anonymous = BrokerAddress("mqtt", brokers.mqtt.host, brokers.mqtt.port, None, None)
    with pytest.raises(AuthenticationError):
        probe_mqtt(anonymous)


def test_wrong_password_is_refused_with_a_hint(brokers):
    wrong = BrokerAddress("mqtt", brokers.mqtt.host, brokers.mqtt.port, "mqkit", "wrong")
    with pytest.raises(AuthenticationError) as info:
        probe_mqtt(wrong)
    assert f"port={brokers.mqtt.port}" in str(info.value)
    assert "Hint:" in str(info.value)


def test_listeners_are_on_loopback_only(brokers, broker_state_dir):
    state = ProcessBackend(Settings.from_env(env={}, state_dir=broker_state_dir)).store.load()
    pids = set(state.pids.values())
    addresses = listening_sockets(pids)
    assert addresses, "the brokers listen nowhere?"
    for address in addresses:
        host = address.rsplit(":", 1)[0]
        assert host in ("127.0.0.1", "[::1]"), f"listener off loopback: {address}"
    ports = {int(a.rsplit(":", 1)[1]) for a in addresses}
    assert {brokers.amqp.port, brokers.mqtt.port, brokers.management.port} <= ports


def test_state_is_private_and_credentials_are_random(brokers, broker_state_dir):
    store = ProcessBackend(Settings.from_env(env={}, state_dir=broker_state_dir)).store
    assert stat.S_IMODE(store.file.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((store.dir / "mosquitto" / "passwd").stat().st_mode) == 0o600
    assert len(brokers.amqp.password) >= 22  # >= 128 bits of URL-safe base64


def test_second_start_reuses_running_brokers(brokers, broker_state_dir):
    backend = ProcessBackend(Settings.from_env(env={}, state_dir=broker_state_dir))
    assert backend.start() == brokers
    assert backend.running() == brokers


@pytest.fixture(scope="module")
def own_backend(broker_factory):
    """Brokers of this module only: they get restarted and killed."""
    backend = broker_factory("process")
    yield backend
    backend.stop()


def test_restart_keeps_durable_queue_and_persistent_message(own_backend):
    endpoints = own_backend.start()
    queue = f"durable-{uuid.uuid4().hex}"
    connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"kept", pika.BasicProperties(delivery_mode=2))
    connection.close()

    pid_before = own_backend.store.load().pids["rabbitmq"]
    assert own_backend.restart("rabbitmq") == endpoints
    assert own_backend.store.load().pids["rabbitmq"] != pid_before

    connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
    try:
        _method, _props, body = connection.channel().basic_get(queue, auto_ack=True)
        assert body == b"kept"
    finally:
        connection.close()


def test_kill_then_start_revives_with_same_credentials(own_backend):
    endpoints = own_backend.start()
    own_backend.kill("mosquitto")
    assert not is_listening(endpoints.mqtt.port)
    assert [s.is_running for s in own_backend.status()] == [True, False]
    with pytest.raises(BrokerNotRunning):
        own_backend.kill("mosquitto")
    assert own_backend.start() == endpoints
    assert mqtt_round_trip(endpoints.mqtt, f"revived/{uuid.uuid4().hex}") == b"hello mqtt"


def test_stop_leaves_nothing_behind(tmp_path):
    backend = ProcessBackend(Settings.from_env(env={}, state_dir=tmp_path / "state"))
    require(backend.availability().is_available, backend.availability().reason)
    endpoints = backend.start()
    pids = set(backend.store.load().pids.values())
    ports = [endpoints.amqp.port, endpoints.mqtt.port, endpoints.management.port]
    assert all(is_listening(port) for port in ports)

    stopped = backend.stop()

    assert sorted(stopped) == ["epmd", "mosquitto", "rabbitmq"]
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        assert not status.exists(), f"pid {pid} is still there:\n{status.read_text()[:300]}"
    assert not any(is_listening(port) for port in ports)
    assert listening_sockets(pids) == []
    assert not (tmp_path / "state" / "process").exists()
    assert backend.running() is None
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
