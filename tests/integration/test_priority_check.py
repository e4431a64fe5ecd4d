"""Lab 03's priority check against a real RabbitMQ: each verdict comes from the queue itself."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pika
import pytest

from mqkit.grading import Check, Status, get_check
from mqkit.grading.amqp import SUPPORT_LEVELS, SUPPORT_TICKETS, priority_order

pytestmark = pytest.mark.integration

LAB_SOURCE = Path(__file__).resolve().parents[2] / "labs" / "_src" / "03-publish-consume.py"
LEVELS = {"low": 1, "normal": 2, "urgent": 3}
IN_ORDER = ["server down", "disk full", "invoice 17 wrong", "refund 42", "printer jammed",
            "new mouse"]


@pytest.fixture
def support(brokers):
    """A channel with publisher confirms and a unique queue name, deleted after."""
    connection = pika.BlockingConnection(pika.URLParameters(brokers.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    name = f"test.priority.{uuid.uuid4().hex[:12]}"
    yield channel, name
    if connection.is_open:
        connection.channel().queue_delete(queue=name)
        connection.close()


def _check(name: str) -> Check:
    return Check("99.test", "test", "the hint", priority_order,
                 params={"queue": name, "tickets": SUPPORT_TICKETS, "levels": SUPPORT_LEVELS})


def _publish(channel, name: str, priorities: dict[str, int | None],
             tickets=SUPPORT_TICKETS) -> None:
    for ticket, level in tickets:
        channel.basic_publish("", name, ticket.encode(),
                              pika.BasicProperties(priority=priorities.get(level)))


def _drain(channel, name: str) -> list[str]:
    bodies = []
    for _ in range(20):
        method, _properties, body = channel.basic_get(name, auto_ack=True)
        if method is None:
            break
        bodies.append(body.decode())
    return bodies


def test_the_lab_publishes_the_tickets_the_check_expects() -> None:
    source = LAB_SOURCE.read_text(encoding="utf-8")
    found = re.findall(r"\('([^']+)', '(low|normal|urgent)'\)", source)
    assert tuple(found) == SUPPORT_TICKETS
    assert get_check("03.priority-order").params["queue"] == "lab03.support"
    assert get_check("03.priority-order").points == 2


def test_a_priority_queue_with_priorities_by_level_passes_and_keeps_the_tickets(
        brokers, support) -> None:
    channel, name = support
    channel.queue_declare(name, durable=True, arguments={"x-max-priority": 3})
    _publish(channel, name, LEVELS)
    result = _check(name).run(brokers)
    assert result.is_passed, result.line()
    assert result.message == (f"priority queue {name!r} hands an agent the 6 tickets urgent, "
                              "then normal, then low, the oldest first among equals")
    # The check gave the tickets back: a consumer still gets all six, in the desk's order.
    assert _drain(channel, name) == IN_ORDER
    assert _check(name).run(brokers).message == (
        f"queue {name!r} holds 0 messages, not the 6 tickets once each: run the ticket cell "
        "again, it starts from an empty queue")


def test_no_queue_and_a_plain_queue_are_not_yet(brokers, support) -> None:
    channel, name = support
    missing = _check(name).run(brokers)
    assert missing.status is Status.FAILED
    assert missing.message == f"there is no queue {name!r}"
    channel.queue_declare(name, durable=True)
    _publish(channel, name, LEVELS)  # priorities on a plain queue change nothing
    plain = _check(name).run(brokers)
    assert plain.status is Status.FAILED
    assert plain.message == (f"queue {name!r} is not a priority queue: it was declared without "
                             "x-max-priority, so it delivers in arrival order")
    assert _drain(channel, name)[0] == "printer jammed"


def test_tickets_without_priorities_are_not_yet_even_in_the_right_order(brokers,
                                                                         support) -> None:
    # Published already sorted, they come out right only because they arrived so.
    channel, name = support
    channel.queue_declare(name, durable=True, arguments={"x-max-priority": 3})
    by_body = dict(SUPPORT_TICKETS)
    _publish(channel, name, {}, tickets=[(body, by_body[body]) for body in IN_ORDER])
    result = _check(name).run(brokers)
    assert result.status is Status.FAILED
    assert result.message == ("ticket 'server down' carries no priority: a queue orders "
                              "messages only by the priority each one carries")


def test_priorities_in_the_wrong_direction_are_named(brokers, support) -> None:
    channel, name = support
    channel.queue_declare(name, durable=True, arguments={"x-max-priority": 3})
    _publish(channel, name, {"low": 3, "normal": 2, "urgent": 1})
    result = _check(name).run(brokers)
    assert result.status is Status.FAILED
    assert result.message.startswith("the urgent ticket 'server down' has priority 1, not "
                                     "higher than the normal ticket")


def test_priorities_above_the_maximum_count_as_the_maximum(brokers, support) -> None:
    # Seen on RabbitMQ 3.10.8: with x-max-priority 3, priorities 9 and 5 both count as 3,
    # so urgent and normal tickets come out in arrival order.
    channel, name = support
    channel.queue_declare(name, durable=True, arguments={"x-max-priority": 3})
    _publish(channel, name, {"low": 1, "normal": 5, "urgent": 9})
    result = _check(name).run(brokers)
    assert result.status is Status.FAILED
    assert result.message == (
        "an agent would get the tickets as 'invoice 17 wrong', 'server down', 'refund 42', "
        "'disk full', 'printer jammed', 'new mouse': x-max-priority is 3, and a priority "
        "above it counts as 3")


def test_tickets_published_twice_are_not_yet(brokers, support) -> None:
    channel, name = support
    channel.queue_declare(name, durable=True, arguments={"x-max-priority": 3})
    _publish(channel, name, LEVELS)
    _publish(channel, name, LEVELS)
    result = _check(name).run(brokers)
    assert result.status is Status.FAILED
    assert result.message.startswith(f"queue {name!r} holds 12 messages, not the 6 tickets")
