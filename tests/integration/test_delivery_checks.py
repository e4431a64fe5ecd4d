"""The checks of labs 08 and 09 (mqkit.grading.delivery) against a real RabbitMQ.

Each check meets a real setup that should pass and real setups that should not: RPC
servers run in threads with connections of their own, as in lab 08.
"""

from __future__ import annotations

import threading
import time
import uuid

import pika
import pytest

from mqkit.grading import Status, get_check
from mqkit.grading.amqp import _queue_path, management_json

pytestmark = pytest.mark.integration


@pytest.fixture
def amqp(brokers):
    """A channel and a unique, durable request queue, deleted after the test."""
    connection = pika.BlockingConnection(pika.URLParameters(brokers.amqp_url))
    channel = connection.channel()
    name = f"test.delivery.{uuid.uuid4().hex[:12]}"
    channel.queue_declare(queue=name, durable=True)
    yield channel, name
    if connection.is_open:
        connection.channel().queue_delete(queue=name)
        connection.close()


class Server:
    """An RPC server in a thread: answers fib(n); ``on_poison`` says what a bad body does.

    ``crash``: the server dies, its connection closes with the request unacked;
    ``error-reply``: an error reply (header 'error'), then reject without requeue;
    ``requeue``: it survives but puts the request back (nack with requeue);
    ``hold``: an error reply, but the request is never settled.
    """

    def __init__(self, url: str, queue: str, on_poison: str, prefetch: int = 1) -> None:
        self.url, self.queue, self.on_poison, self.prefetch = url, queue, on_poison, prefetch
        self.stopping, self.ready = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.prefetch)
            for method, properties, body in channel.consume(self.queue, inactivity_timeout=0.1):
                self.ready.set()
                if self.stopping.is_set():
                    break
                if method is None:
                    continue
                reply = pika.BasicProperties(correlation_id=properties.correlation_id)
                try:
                    number = int(body)
                except ValueError:
                    if self.on_poison == "crash":
                        break  # the connection closes with the request unacked
                    if self.on_poison == "requeue":
                        channel.basic_nack(method.delivery_tag, requeue=True)
                        continue
                    reply.headers = {"error": "not a number"}
                    channel.basic_publish("", properties.reply_to, b"", reply)
                    if self.on_poison == "error-reply":
                        channel.basic_reject(method.delivery_tag, requeue=False)
                    continue
                a, b = 0, 1
                for _ in range(number):
                    a, b = b, a + b
                channel.basic_publish("", properties.reply_to, str(a).encode(), reply)
                channel.basic_ack(method.delivery_tag)
        finally:
            self.ready.set()
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


@pytest.fixture
def servers(brokers):
    """Start servers with ``servers(queue, on_poison, count=1)``; all stopped after."""
    started: list[Server] = []

    def start(queue: str, on_poison: str, count: int = 1, prefetch: int = 1) -> list[Server]:
        new = [Server(brokers.amqp_url, queue, on_poison, prefetch) for _ in range(count)]
        started.extend(new)
        return new

    yield start
    for server in started:
        server.stop()


def _ready(channel, queue: str) -> tuple[int, int]:
    ok = channel.queue_declare(queue=queue, passive=True).method
    return ok.message_count, ok.consumer_count


def test_rpc_server_check(brokers, amqp, servers) -> None:
    _channel, name = amqp
    check = get_check("08.rpc-server")
    assert "no server consumes" in check.run(brokers, queue=name).message
    servers(name, "error-reply")
    result = check.run(brokers, queue=name)
    assert result.is_passed, result.line()


def test_poison_check_passes_for_servers_that_answer_with_an_error(brokers, amqp,
                                                                   servers) -> None:
    channel, name = amqp
    servers(name, "error-reply", count=2)
    result = get_check("08.poison-message").run(brokers, queue=name)
    assert result.is_passed, result.line()
    assert result.message == (f"the poison request 'ten' got an error reply (not a number) and "
                              f"left {name!r}; '10' was answered with '55'; all 2 servers "
                              "still consume")
    assert _ready(channel, name) == (0, 2)


def test_poison_check_fails_when_the_poison_kills_every_server(brokers, amqp,
                                                               servers) -> None:
    channel, name = amqp
    check = get_check("08.poison-message")
    result = check.run(brokers, queue=name)
    assert result.status is Status.FAILED
    assert "no server consumes" in result.message

    servers(name, "crash", count=2)
    result = check.run(brokers, queue=name)
    assert result.status is Status.FAILED
    assert "'ten' stopped 2 of 2 servers" in result.message
    assert f"'ten' got no reply and went back to {name!r}" in result.message
    assert "the check took its requests out again" in result.message
    # The poison is gone, and nothing of the check's is left for the next server.
    assert _ready(channel, name) == (0, 0)


def test_poison_check_keeps_other_requests_in_their_order(brokers, amqp, servers) -> None:
    channel, name = amqp
    crashing = servers(name, "crash")
    channel.confirm_delivery()
    result = get_check("08.poison-message").run(brokers, queue=name)
    assert result.status is Status.FAILED
    assert not crashing[0].thread.is_alive()
    # While nobody consumes, two requests of someone else wait; a second run leaves them.
    for body in (b"1", b"2"):
        channel.basic_publish("", name, body)
    assert "no server consumes" in get_check("08.poison-message").run(brokers, queue=name).message
    bodies = [channel.basic_get(name, auto_ack=True)[2] for _ in range(2)]
    assert bodies == [b"1", b"2"]


def test_poison_check_fails_when_the_poison_is_requeued_forever(brokers, amqp,
                                                                servers) -> None:
    _channel, name = amqp
    looping = servers(name, "requeue")
    result = get_check("08.poison-message").run(brokers, queue=name)
    assert result.status is Status.FAILED
    assert "stopped" not in result.message  # the server lives...
    assert "no reply to the good request '10'" in result.message  # ...stuck on the poison
    assert looping[0].thread.is_alive()


def test_poison_check_sees_a_poison_request_never_settled(brokers, amqp, servers) -> None:
    _channel, name = amqp
    # The management API's counts of a new queue appear after its first statistics round.
    deadline = time.monotonic() + 15
    while management_json(brokers, _queue_path(brokers, name)).get("messages") is None:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    servers(name, "hold", prefetch=2)
    result = get_check("08.poison-message").run(brokers, queue=name)
    assert result.status is Status.FAILED
    assert f"{name!r} still holds 1 request (ready or unacknowledged)" in result.message


@pytest.fixture
def limited(brokers):
    """Lab 09's pair on unique names: a queue that holds 2 and nacks more, whose messages
    move after 0.1 s (TTL, dead-lettered) into an unlimited "arrived" queue."""
    connection = pika.BlockingConnection(pika.URLParameters(brokers.amqp_url))
    channel = connection.channel()
    name = f"test.delivery.{uuid.uuid4().hex[:12]}"
    via, arrived = f"{name}.limited", f"{name}.arrived"
    channel.queue_declare(queue=arrived, durable=True)
    channel.queue_declare(queue=via, durable=True, arguments={
        "x-max-length": 2, "x-overflow": "reject-publish", "x-message-ttl": 100,
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": arrived})
    channel.confirm_delivery()
    yield channel, via, arrived
    if connection.is_open:
        for queue in (via, arrived):
            connection.channel().queue_delete(queue=queue)
        connection.close()


BODIES = [f"msg {number}" for number in range(6)]


def _publish(channel, queue: str, bodies: list[str], again: bool) -> list[str]:
    """Publish with confirms; with ``again``, re-publish the nacked ones after a pause.

    Returns the bodies nacked at least once.
    """
    todo, nacked = list(bodies), []
    for _ in range(10):
        refused = []
        for body in todo:
            try:
                channel.basic_publish("", queue, body.encode())
            except pika.exceptions.NackError:
                refused.append(body)
        nacked += [body for body in refused if body not in nacked]
        todo = refused if again else []
        if not todo:
            break
        time.sleep(0.25)  # the limited queue makes room
    assert not todo
    return nacked


def test_all_confirmed_passes_when_every_nacked_message_is_published_again(brokers, limited):
    channel, via, arrived = limited
    assert _publish(channel, via, BODIES, again=True)  # some were nacked on the way
    result = get_check("09.all-confirmed").run(brokers, queue=arrived, via=via, bodies=BODIES)
    assert result.is_passed, result.line()
    assert result.message == f"{arrived!r} holds each of the 6 messages, each exactly once"
    # The peek put every message back.
    assert channel.queue_declare(queue=arrived, passive=True).method.message_count == 6


def test_all_confirmed_fails_when_nacked_messages_are_dropped(brokers, limited) -> None:
    channel, via, arrived = limited
    check = get_check("09.all-confirmed")
    missing_via = check.run(brokers, queue=arrived, via=f"{via}.none", bodies=BODIES)
    assert missing_via.status is Status.FAILED
    assert "there is no queue" in missing_via.message
    refused = _publish(channel, via, BODIES, again=False)
    assert refused == BODIES[2:]
    result = check.run(brokers, queue=arrived, via=via, bodies=BODIES)
    assert result.status is Status.FAILED
    assert result.message.startswith(
        f"{arrived!r} holds 2 of the 6 messages; missing: msg 2, msg 3, msg 4, msg 5")


def test_all_confirmed_counts_duplicates_as_at_least_once(brokers, limited) -> None:
    channel, via, arrived = limited
    _publish(channel, via, BODIES, again=True)
    channel.basic_publish("", arrived, b"msg 3")  # as after a lost confirm
    result = get_check("09.all-confirmed").run(brokers, queue=arrived, via=via, bodies=BODIES)
    assert result.is_passed, result.line()
    assert result.message.endswith("at least once (1 duplicate)")
