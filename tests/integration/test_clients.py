import socket
import threading
import time
import uuid

import pika
import pika.exceptions
import pytest

from mqkit import clients
from mqkit.admin import Admin
from mqkit.exceptions import AuthenticationError, BrokerConnectionError, ConnectionLost
from mqkit.urls import amqp_url, mqtt_url

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def threads_named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def server_connection_name(admin: Admin, client_name: str) -> str:
    found: list[str] = []

    def listed() -> bool:
        found[:] = [c["name"] for c in admin.connections()
                    if (c.get("client_properties") or {}).get("connection_name") == client_name]
        return bool(found)

    assert wait_until(listed, 15.0), f"connection {client_name} not listed"
    return found[0]


def test_amqp_connection_publishes_and_gets(brokers):
    queue = unique("clients")
    connection = clients.amqp_connection(brokers, name="test-plain")
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        channel.basic_publish("", queue, b"hello")
        _method, _props, body = channel.basic_get(queue, auto_ack=True)
        assert body == b"hello"
        channel.queue_delete(queue)
    finally:
        connection.close()


def test_wrong_password_is_an_authentication_error(brokers):
    address = brokers.amqp
    url = amqp_url(address.host, address.port, address.username, "wrong-password")
    with pytest.raises(AuthenticationError) as caught:
        clients.amqp_connection(url)
    assert f"port={address.port}" in str(caught.value)
    assert "Hint:" in str(caught.value)


def test_closed_port_is_a_connection_error():
    url = amqp_url("127.0.0.1", free_port(), "u", "p")
    with pytest.raises(BrokerConnectionError) as caught:
        clients.amqp_connection(url)
    assert not isinstance(caught.value, AuthenticationError)
    assert "host=127.0.0.1" in str(caught.value)


def test_notebook_connection_survives_idle_past_heartbeat(brokers):
    queue = unique("idle")
    plain = clients.amqp_connection(brokers, heartbeat=2, name="test-idle-plain")
    connection = clients.NotebookConnection(brokers, heartbeat=2, name=unique("idle"))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, exclusive=True)
        time.sleep(9)  # a notebook "between cells": nothing calls pika on this thread
        # The control: a plain BlockingConnection missed its heartbeats and was dropped.
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            plain.channel()
        # The next "cell" just works, on the same connection: the exclusive queue is alive.
        channel.basic_publish("", queue, b"after idle")
        _method, _props, body = channel.basic_get(queue, auto_ack=True)
        assert body == b"after idle"
        assert connection.reconnects == 0
    finally:
        connection.close()
        if plain.is_open:
            plain.close()


def test_consumer_callbacks_run_on_the_users_thread(brokers):
    queue = unique("cb")
    connection = clients.NotebookConnection(brokers, heartbeat=2, name=unique("cb"))
    seen: list[tuple[bytes, str]] = []
    try:
        channel = connection.channel()
        channel.queue_declare(queue, exclusive=True)
        channel.basic_consume(queue, lambda ch, m, p, body: seen.append(
            (body, threading.current_thread().name)), auto_ack=True)
        channel.basic_publish("", queue, b"one")
        time.sleep(3)  # the keep-alive thread pumps the socket meanwhile
        assert seen == []  # ...but never runs user callbacks
        connection.process_data_events(time_limit=2)
        assert seen == [(b"one", threading.current_thread().name)]
    finally:
        connection.close()


def declare_until_it_fails(channel, queue: str) -> None:
    for _ in range(50):
        channel.queue_declare(queue, durable=True)
        time.sleep(0.1)


def test_reconnects_after_the_broker_drops_the_connection(brokers):
    queue = unique("drop")
    name = unique("drop")
    admin = Admin(brokers)
    connection = clients.NotebookConnection(brokers, name=name, keep_alive=False)
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        channel.basic_qos(prefetch_count=7)
        admin.close_connection(server_connection_name(admin, name))
        # Mid-flight: the broker's close arrives while a call waits -> ConnectionLost.
        with pytest.raises(ConnectionLost) as caught:
            declare_until_it_fails(channel, queue)
        assert "Hint:" in str(caught.value)
        # The next call reconnects and re-opens the channel.
        channel.basic_publish("", queue, b"after reconnect")
        _method, _props, body = channel.basic_get(queue, auto_ack=True)
        assert body == b"after reconnect"
        assert connection.reconnects == 1
        channel.queue_delete(queue)
    finally:
        connection.close()


def test_keep_alive_notices_a_dropped_connection_and_next_use_reconnects(brokers):
    name = unique("ka")
    admin = Admin(brokers)
    connection = clients.NotebookConnection(brokers, heartbeat=2, name=name)
    try:
        channel = connection.channel()
        admin.close_connection(server_connection_name(admin, name))
        assert wait_until(lambda: not connection.is_open, 10.0)
        ok = channel.queue_declare("", exclusive=True)
        assert ok.method.queue.startswith("amq.gen-")
        assert connection.reconnects == 1
    finally:
        connection.close()


def test_channel_reopens_after_a_channel_error(brokers):
    connection = clients.NotebookConnection(brokers, name=unique("chan"))
    try:
        channel = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            channel.queue_declare(unique("missing"), passive=True)
        assert channel.queue_declare("", exclusive=True).method.queue
    finally:
        connection.close()
    assert threads_named(f"mqkit-keepalive-{connection.name}") == []


def test_notebook_connection_with_same_key_closes_the_previous(brokers):
    key = unique("key")
    first = clients.notebook_connection(brokers, name=key)
    second = clients.notebook_connection(brokers, name=key)
    try:
        assert first.is_closed
        assert not second.is_closed
        assert len(threads_named(f"mqkit-keepalive-{key}")) == 1
        with pytest.raises(ConnectionLost):
            first.channel()
    finally:
        second.close()
    assert threads_named(f"mqkit-keepalive-{key}") == []
    assert key not in clients.workers()


def test_mqtt_connect_and_registry_stops_loop_threads(brokers):
    topic = unique("t")
    client_id = unique("mq")
    received = threading.Event()
    payloads: list[bytes] = []

    def on_message(_client, _userdata, message):
        payloads.append(message.payload)
        received.set()

    first = clients.mqtt_client(brokers, client_id=client_id)
    clients.mqtt_connect(client=first, key=client_id)
    assert len(threads_named(f"paho-mqtt-client-{client_id}")) == 1
    # The cell is re-run: a new client under the same key replaces the old loop thread.
    second = clients.mqtt_client(brokers, client_id=client_id)
    second.on_message = on_message
    clients.mqtt_connect(client=second, key=client_id)
    assert wait_until(lambda: len(threads_named(f"paho-mqtt-client-{client_id}")) == 1, 5)
    assert not first.is_connected()
    second.subscribe(topic, qos=1)
    time.sleep(0.3)
    second.publish(topic, b"hi", qos=1).wait_for_publish(5)
    assert received.wait(5)
    assert payloads == [b"hi"]
    assert clients.stop(client_id)
    assert wait_until(lambda: not threads_named(f"paho-mqtt-client-{client_id}"), 5)


def test_mqtt_wrong_password_is_an_authentication_error(brokers):
    address = brokers.mqtt
    url = mqtt_url(address.host, address.port, address.username, "wrong")
    key = unique("bad")
    with pytest.raises(AuthenticationError) as caught:
        clients.mqtt_connect(url, key=key)
    assert f"port={address.port}" in str(caught.value)
    assert key not in clients.workers()


def test_a_notebook_channel_shows_the_brokers_answer_readably(brokers):
    queue = f"readable-{uuid.uuid4().hex[:8]}"
    connection = clients.notebook_connection(brokers, name=queue)
    try:
        channel = connection.channel()
        reply = channel.queue_declare(queue=queue, durable=True)
        assert repr(reply) == (f"Queue.DeclareOk(queue={queue!r}, message_count=0, "
                               "consumer_count=0)")
        assert reply.method.queue == queue  # still pika's frame underneath
        assert repr(channel.queue_bind(queue, "amq.direct", routing_key="k")) == "Queue.BindOk()"
        assert "METHOD" not in repr(channel.queue_delete(queue))
    finally:
        connection.close()
