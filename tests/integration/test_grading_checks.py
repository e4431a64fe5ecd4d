"""The AMQP checks against a real RabbitMQ: each verdict comes from real broker state."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pika
import pytest

from mqkit.grading import Check, Status, get_check
from mqkit.grading.amqp import all_acked, durable_queue, persistent_message, queue_has_messages

pytestmark = pytest.mark.integration


@pytest.fixture
def amqp(brokers):
    """A connection with publisher confirms and a unique queue name, cleaned up after."""
    connection = pika.BlockingConnection(pika.URLParameters(brokers.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    name = f"test.grading.{uuid.uuid4().hex[:12]}"
    yield connection, channel, name
    if connection.is_open:
        connection.channel().queue_delete(queue=name)
        connection.close()


def _check(func, **params) -> Check:
    return Check("99.test", "test", "the hint", func, params=params)


def test_durable_queue_verdicts(brokers, amqp) -> None:
    _connection, channel, name = amqp
    check = _check(durable_queue, queue=name)
    assert check.run(brokers).status is Status.FAILED  # no queue yet
    channel.queue_declare(queue=name, durable=True)
    result = check.run(brokers)
    assert result.is_passed, result.line()
    assert result.message == f"queue {name!r} is a durable classic queue"
    assert check.run(brokers, queue_type="quorum").status is Status.FAILED


def test_an_exclusive_queue_is_not_durable_enough(brokers, amqp) -> None:
    _connection, channel, name = amqp
    channel.queue_declare(queue=name, exclusive=True)
    result = _check(durable_queue, queue=name).run(brokers)
    assert result.status is Status.FAILED
    assert "not durable" in result.message


def test_quorum_queue_passes_the_quorum_check(brokers, amqp) -> None:
    _connection, channel, name = amqp
    channel.queue_declare(queue=name, durable=True, arguments={"x-queue-type": "quorum"})
    assert _check(durable_queue, queue=name, queue_type="quorum").run(brokers).is_passed


def test_persistent_message_verdicts_and_the_peek_keeps_the_message(brokers, amqp) -> None:
    _connection, channel, name = amqp
    channel.queue_declare(queue=name, durable=True)
    check = _check(persistent_message, queue=name)
    channel.basic_publish("", name, b"transient")
    assert check.run(brokers).status is Status.FAILED
    channel.basic_publish("", name, b"persistent", pika.BasicProperties(delivery_mode=2))
    assert check.run(brokers).is_passed
    assert channel.queue_declare(queue=name, passive=True).method.message_count == 2


def test_queue_has_messages(brokers, amqp) -> None:
    _connection, channel, name = amqp
    channel.queue_declare(queue=name, durable=True)
    check = _check(queue_has_messages, queue=name)
    assert check.run(brokers).message == f"queue {name!r} holds 0 messages, expected at least 1"
    channel.basic_publish("", name, b"one")
    assert check.run(brokers).message == f"queue {name!r} holds 1 message"


def test_all_acked_sees_unacked_messages_come_back(brokers, amqp) -> None:
    connection, channel, name = amqp
    channel.queue_declare(queue=name, durable=True)
    for body in (b"a", b"b"):
        channel.basic_publish("", name, body)
    check = _check(all_acked, queue=name)

    consumer = connection.channel()
    consumer.basic_consume(queue=name, on_message_callback=lambda *args: None)
    result = check.run(brokers)
    assert result.status is Status.FAILED
    assert "still has 1 consumer" in result.message
    consumer.close()  # never acked: both messages go back
    result = check.run(brokers)
    assert result.message == f"2 messages went back to queue {name!r}"

    worker = connection.channel()
    for method, _properties, _body in worker.consume(name, inactivity_timeout=1):
        if method is None:
            break
        worker.basic_ack(method.delivery_tag)
    worker.cancel()
    worker.close()
    assert check.run(brokers).is_passed


def test_unreachable_broker_is_an_error_not_a_failure(brokers) -> None:
    dead = replace(brokers, amqp_url="amqp://mqkit:x@127.0.0.1:1/%2F")
    result = get_check("03.all-acked").run(dead)
    assert result.status is Status.ERROR
    assert "Hint" not in result.message


def test_brokers_reachable_check(brokers) -> None:
    check = get_check("00.brokers-reachable")
    assert check.assert_passed(brokers).is_passed
    wrong = replace(brokers, amqp_url=brokers.amqp_url.replace("@", "x@", 1))
    result = check.run(wrong)
    assert result.status is Status.FAILED
    assert "refused" in result.message
