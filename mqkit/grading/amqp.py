"""AMQP checks: they look at the real RabbitMQ through a fresh connection of their own.

Queue existence and message counts come from a passive ``queue.declare`` (exact and
immediate); queue properties (durable, type) and message properties come from the management
API, whose queue records are immediate (only its statistics lag). Counts are re-read for up
to :data:`SETTLE_TIMEOUT` seconds until they match, because a message published on another
connection without confirms may still be on its way when the check starts.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from mqkit.clients.amqp import amqp_connection
from mqkit.clients.management import ManagementClient
from mqkit.endpoints import Endpoints
from mqkit.exceptions import ResourceNotFound
from mqkit.grading.registry import NotYet, check

#: Seconds a check waits for a count to reach the wanted value before it says "not yet".
SETTLE_TIMEOUT = 2.0
_POLL = 0.1
T = TypeVar("T")


@dataclass(frozen=True)
class QueueState:
    """A queue as a passive declare sees it (``None`` counts: exclusive to another client)."""

    name: str
    messages: int | None
    consumers: int | None
    is_locked: bool = False


@contextlib.contextmanager
def _channel(endpoints: Endpoints) -> Iterator[Any]:
    # A connection of the check's own, to the first (primary) broker: one attempt, 5 s.
    connection = amqp_connection(endpoints.amqp.url(), name="mqkit-check", timeout=5)
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def queue_state(endpoints: Endpoints, queue: str) -> QueueState | None:
    """The queue's ready-message and consumer counts, or ``None`` when it does not exist."""
    import pika.exceptions

    with _channel(endpoints) as channel:
        try:
            ok = channel.queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return None
            if exc.reply_code == 405:  # RESOURCE_LOCKED: another connection's exclusive queue
                return QueueState(queue, None, None, is_locked=True)
            raise
    return QueueState(queue, ok.method.message_count, ok.method.consumer_count)


def management_json(endpoints: Endpoints, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST ``body`` to) ``/api/<path>`` of the management API; return parsed JSON.

    Raises:
        NotYet: a 404 (the object does not exist).
        ConfigError: the endpoints have no management API.
    """
    api = ManagementClient(endpoints, timeout=5)
    try:
        return api.request("POST" if body is not None else "GET", path, body)
    except ResourceNotFound:
        raise NotYet(f"{urllib.parse.unquote(path.rsplit('/', 1)[-1])!r} does not exist") from None


def _queue_path(endpoints: Endpoints, queue: str) -> str:
    vhost = endpoints.amqp.vhost or "/"
    return f"queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(queue, safe='')}"


def _settle(read: Callable[[], T], is_done: Callable[[T], bool]) -> T:
    """Re-read state until ``is_done`` or :data:`SETTLE_TIMEOUT`; return the last reading."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    value = read()
    while not is_done(value) and time.monotonic() < deadline:
        time.sleep(_POLL)
        value = read()
    return value


# -- the checks of labs 00-03 (functions reusable with other queue names) --------------


@check("00.brokers-reachable", "the brokers answer",
       hint=('A check can only look at brokers that run: have you started them in '
              'this notebook?',
             'Run the first code cell, the one that calls mqkit.start_brokers(); '
              '`mqkit doctor` in a terminal tells what is missing when it fails.',
             'endpoints = mqkit.start_brokers()'))
def brokers_reachable(endpoints: Endpoints) -> str:
    """RabbitMQ accepts the AMQP URL's credentials; the management API and Mosquitto answer."""
    from mqkit.brokers.readiness import probe_amqp_url, probe_management, probe_mqtt
    from mqkit.exceptions import BrokerConnectionError

    try:
        probe_amqp_url(endpoints.amqp_url)
        if endpoints.management is not None:
            probe_management(endpoints.management)
        probe_mqtt(endpoints.mqtt)
    except BrokerConnectionError as exc:
        raise NotYet(exc.message) from None
    return "RabbitMQ, its management API and Mosquitto all answer"


@check("01.own-connection", "a message published over your own connection",
       hint=('The queue did not get a message over a connection of yours: a message '
              'needs a connection, a channel on it, a queue to land in, and a '
              'publish.',
             'Build the connection parameters from endpoints.amqp_url, open a '
              'channel, declare the queue named in the exercise, publish one message '
              'to it through the default exchange, then close the connection.',
             'connection = '
              'pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url)); '
              'channel = connection.channel(); '
              "channel.queue_declare(queue='lab01.hello', durable=True); "
              "channel.basic_publish(exchange='', routing_key='lab01.hello', "
              "body='Hello'); connection.close()"),
       params={"queue": "lab01.hello"})
def queue_has_messages(endpoints: Endpoints, queue: str, at_least: int = 1) -> str:
    """The queue exists and holds at least ``at_least`` ready messages."""
    state = _settle(lambda: queue_state(endpoints, queue),
                    lambda s: s is not None and (s.messages or 0) >= at_least)
    if state is None:
        raise NotYet(f"there is no queue {queue!r}")
    if state.is_locked:
        raise NotYet(f"queue {queue!r} is exclusive to another connection")
    if (state.messages or 0) < at_least:
        raise NotYet(f"queue {queue!r} holds {_plural(state.messages or 0, 'message')}, "
                     f"expected at least {at_least}")
    return f"queue {queue!r} holds {_plural(state.messages or 0, 'message')}"


@check("02.durable-queue", "a durable queue",
       hint=('A queue that must outlive a broker restart has to be declared as such: '
              'which property of a queue says so?',
             "Declare the queue again with the durability flag set (a queue's "
              'properties are fixed when it is first declared: delete it first if it '
              'exists without it).',
             "channel.queue_declare(queue='lab02.orders', durable=True)"),
       params={"queue": "lab02.orders"})
@check("02.quorum-queue", "a quorum queue",
       hint=('A quorum queue is a different queue type, chosen when the queue is '
              'declared: where do queue arguments go?',
             'Pass the x-queue-type argument with the value quorum; quorum queues '
              'are always durable, so declare it durable too.',
             "channel.queue_declare(queue='lab02.quorum', durable=True, "
              "arguments={'x-queue-type': 'quorum'})"),
       params={"queue": "lab02.quorum", "queue_type": "quorum"})
def durable_queue(endpoints: Endpoints, queue: str, queue_type: str | None = None) -> str:
    """The queue exists, is durable, not exclusive, and (optionally) of ``queue_type``."""
    if queue_state(endpoints, queue) is None:
        raise NotYet(f"there is no queue {queue!r}")
    info = management_json(endpoints, _queue_path(endpoints, queue))
    kind = info.get("type", "classic")
    if not info.get("durable"):
        raise NotYet(f"queue {queue!r} exists but is not durable")
    if info.get("exclusive") or info.get("auto_delete"):
        raise NotYet(f"queue {queue!r} is durable but exclusive or auto-delete: it will not "
                     "outlive its connection")
    if queue_type and kind != queue_type:
        raise NotYet(f"queue {queue!r} is a {kind} queue, not a {queue_type} queue")
    return f"queue {queue!r} is a durable {kind} queue"


@check("02.survives-restart", "a persistent message survives a restart",
       hint=('A durable classic queue keeps its messages across a restart only if '
              'the messages themselves are marked to be written to disk: which message '
              'property is that?',
             'Publish to the durable queue with the persistent delivery mode (2) in '
              'the message properties, before the broker restarts.',
             "channel.basic_publish('', 'lab02.orders', body, "
              'properties=pika.BasicProperties(delivery_mode=2))'),
       points=2, params={"queue": "lab02.orders"})
def persistent_message(endpoints: Endpoints, queue: str) -> str:
    """The queue holds a message published with ``delivery_mode=2`` (it is put back)."""
    queue_has_messages(endpoints, queue)
    # ack_requeue_true: the message is looked at and put back, as a peek.
    messages = management_json(endpoints, _queue_path(endpoints, queue) + "/get", {
        "count": 10, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 200})
    # A message without properties has "properties": [] (an empty Erlang list), not {}.
    persistent = [m for m in messages
                  if isinstance(m.get("properties"), dict)
                  and m["properties"].get("delivery_mode") == 2]
    if not persistent:
        raise NotYet(f"queue {queue!r} holds no persistent message (delivery_mode=2)")
    return f"queue {queue!r} holds a persistent message"


@check("03.all-acked", "every task acknowledged",
       hint=('Messages went back to the queue or still wait there: a consumer that '
              'takes a message must also tell the broker it is done with it.',
             'Consume with manual acknowledgements (auto_ack off) and acknowledge '
              'each message by its delivery tag, before the channel closes.',
             'ch.basic_ack(delivery_tag=method.delivery_tag)  # in the callback, '
              'with auto_ack=False'),
       points=2, params={"queue": "lab03.tasks"})
def all_acked(endpoints: Endpoints, queue: str) -> str:
    """The queue exists, no message waits in it, and no consumer holds one unacknowledged."""
    state = _settle(lambda: queue_state(endpoints, queue),
                    lambda s: s is not None and s.messages == 0 and s.consumers == 0)
    if state is None:
        raise NotYet(f"there is no queue {queue!r}")
    if state.is_locked:
        raise NotYet(f"queue {queue!r} is exclusive to another connection")
    if state.consumers:
        raise NotYet(f"queue {queue!r} still has {_plural(state.consumers, 'consumer')}: close "
                     "the channel when you are done")
    if state.messages:
        raise NotYet(f"{_plural(state.messages, 'message')} went back to queue {queue!r}")
    return f"queue {queue!r} is empty: every message was acknowledged"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

