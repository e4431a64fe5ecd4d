"""Self-check verdicts for the classroom's progress board.

A classroom card sets ``MQKIT_CLASSROOM_URL``: an AMQP URL of the classroom broker's progress
vhost, where the student may publish to one exchange and read nothing. Each self-check then
sends its verdict there: the check id, passed or not, and the time; nothing else of the
student's work. Who sent it is the message's ``user_id`` property, which RabbitMQ checks
against the connection's user (a verdict claiming another student's name is refused), so the
board never trusts a name in a payload.

Sending is best effort: a self-check shows its result to the student whether or not the
board could be told (a failure is logged, never raised into the notebook).

Example:
    >>> report_verdict(get_check("02.durable-queue").run(endpoints))   # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mqkit.config import Settings
from mqkit.exceptions import MQKitError
from mqkit.urls import parse_amqp_urls

if TYPE_CHECKING:
    from mqkit.grading.registry import CheckResult

log = logging.getLogger(__name__)

#: The exchange in the progress vhost that verdicts are published to (a topic exchange; the
#: routing key is the check id).
EXCHANGE = "mqkit.progress"
#: Seconds to connect and publish before the verdict is given up (the student waits on it).
TIMEOUT = 3.0


def verdict(result: CheckResult, when: datetime | None = None) -> dict[str, Any]:
    """The verdict as sent: ``check``, ``passed`` and ``time`` (ISO 8601, UTC), nothing else."""
    moment = when or datetime.now(UTC)
    return {"check": result.check_id, "passed": result.is_passed,
            "time": moment.isoformat(timespec="seconds")}


def report_verdict(result: CheckResult, url: str | None = None) -> bool:
    """Send a self-check's verdict to the classroom's progress exchange.

    Only passed and not-yet verdicts are sent: a check that could not look (the student's
    broker is down) says nothing about the student's work.

    Args:
        result: the self-check's result.
        url: the progress vhost's AMQP URL (default: ``MQKIT_CLASSROOM_URL``; none set:
            nothing is sent).

    Returns:
        True when the broker confirmed the verdict.
    """
    from mqkit.grading.registry import Status

    url = Settings.from_env().classroom_url if url is None else url
    if not url or result.status not in (Status.PASSED, Status.FAILED):
        return False
    try:
        return _publish(url, verdict(result))
    except MQKitError as exc:
        log.warning("the progress board was not told about %s: %s", result.check_id,
                    exc.message)
    except Exception as exc:  # never break a student's self-check cell
        log.warning("the progress board was not told about %s: %r", result.check_id, exc)
    return False


def _publish(url: str, body: dict[str, Any]) -> bool:
    import pika

    from mqkit.clients.amqp import amqp_connection

    user = parse_amqp_urls(url)[0].username
    connection = amqp_connection(url, name="mqkit-progress", timeout=TIMEOUT)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        # user_id must equal the connection's user, or RabbitMQ closes the channel
        # (406 PRECONDITION_FAILED): that is what makes it trustworthy on the board.
        properties = pika.BasicProperties(user_id=user, content_type="application/json",
                                          delivery_mode=2, timestamp=int(time.time()))
        channel.basic_publish(EXCHANGE, body["check"], json.dumps(body).encode(), properties)
        return True
    finally:
        if connection.is_open:
            connection.close()
