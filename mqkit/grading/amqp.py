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


def inspectable(state: QueueState | None, queue: str) -> QueueState:
    """``state`` of a queue a check can look into; else :class:`NotYet` saying why not.

    Raises:
        NotYet: the queue does not exist, or is another connection's exclusive queue.
    """
    if state is None:
        raise NotYet(f"there is no queue {queue!r}")
    if state.is_locked:
        raise NotYet(f"queue {queue!r} is exclusive to another connection: declare it durable "
                     "and not exclusive so the check can look at it")
    return state


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
             'endpoints = mqkit.start_brokers()'),
       read_only=True)
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
             'Build the connection parameters from the lab\'s url, open a '
              'channel, declare the queue named in the exercise, publish one message '
              'to it through the default exchange, then close the connection.',
             'connection = '
              'pika.BlockingConnection(pika.URLParameters(url)); '
              'channel = connection.channel(); '
              "channel.queue_declare(queue='lab01.hello', durable=True); "
              "channel.basic_publish(exchange='', routing_key='lab01.hello', "
              "body='Hello'); connection.close()"),
       params={"queue": "lab01.hello"}, read_only=True)
def queue_has_messages(endpoints: Endpoints, queue: str, at_least: int = 1) -> str:
    """The queue exists and holds at least ``at_least`` ready messages."""
    state = _settle(lambda: queue_state(endpoints, queue),
                    lambda s: s is not None and (s.messages or 0) >= at_least)
    state = inspectable(state, queue)
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
       params={"queue": "lab02.orders"}, read_only=True)
@check("02.quorum-queue", "a quorum queue",
       hint=('A quorum queue is a different queue type, chosen when the queue is '
              'declared: where do queue arguments go?',
             'Pass the x-queue-type argument with the value quorum; quorum queues '
              'are always durable, so declare it durable too.',
             "channel.queue_declare(queue='lab02.quorum', durable=True, "
              "arguments={'x-queue-type': 'quorum'})"),
       params={"queue": "lab02.quorum", "queue_type": "quorum"}, read_only=True)
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
    if 2 not in _delivery_modes(endpoints, queue):
        raise NotYet(f"queue {queue!r} holds no persistent message (delivery_mode=2)")
    return f"queue {queue!r} holds a persistent message"


def _delivery_modes(endpoints: Endpoints, queue: str) -> list[int]:
    """The delivery mode of each of the first 10 messages (1: transient), put back after."""
    # ack_requeue_true: the message is looked at and put back, as a peek.
    messages = management_json(endpoints, _queue_path(endpoints, queue) + "/get", {
        "count": 10, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 200})
    # A message without properties has "properties": [] (an empty Erlang list), not {}:
    # no delivery_mode is a transient message.
    return [m["properties"].get("delivery_mode", 1) if isinstance(m.get("properties"), dict)
            else 1 for m in messages]


@check("02.quorum-cases", "the quorum cases of the restart experiment",
       hint=('Each quorum case is a quorum queue holding one message, and the two messages '
              'differ in how they ask to be kept: which message property says that?',
             'Publish a persistent message (delivery mode 2) to the quorum queue '
              'lab02.quorum; declare the durable quorum queue lab02.quorum-transient and '
              'publish a transient message (delivery mode 1, the default) to it.',
             "publisher.basic_publish('', 'lab02.quorum', 'quorum, persistent', "
              'properties=pika.BasicProperties(delivery_mode=2)); '
              "channel.queue_declare(queue='lab02.quorum-transient', durable=True, "
              "arguments={'x-queue-type': 'quorum'}); "
              "publisher.basic_publish('', 'lab02.quorum-transient', 'quorum, transient', "
              'properties=pika.BasicProperties(delivery_mode=1))'),
       points=2,
       params={"persistent_queue": "lab02.quorum", "transient_queue": "lab02.quorum-transient"})
def quorum_cases(endpoints: Endpoints, persistent_queue: str, transient_queue: str) -> str:
    """Two durable quorum queues: one holds a persistent message, the other a transient one.

    After a restart this is what quorum queues show: they keep every message, whatever its
    ``delivery_mode`` (a classic queue would have lost the transient one). Without a restart
    (the grader's brokers cannot restart) it checks that both cases were set up.
    """
    for queue in (persistent_queue, transient_queue):
        durable_queue(endpoints, queue, "quorum")
        queue_has_messages(endpoints, queue)
    if 2 not in _delivery_modes(endpoints, persistent_queue):
        raise NotYet(f"quorum queue {persistent_queue!r} holds no persistent message "
                     "(delivery_mode=2)")
    if not any(mode != 2 for mode in _delivery_modes(endpoints, transient_queue)):
        raise NotYet(f"quorum queue {transient_queue!r} holds no transient message "
                     "(delivery_mode=1)")
    return (f"quorum queue {persistent_queue!r} holds a persistent message, "
            f"{transient_queue!r} a transient one")


@check("03.all-acked", "every task acknowledged",
       hint=('Messages went back to the queue or still wait there: a consumer that '
              'takes a message must also tell the broker it is done with it.',
             'Consume with manual acknowledgements (auto_ack off) and acknowledge '
              'each message by its delivery tag, before the channel closes.',
             'ch.basic_ack(delivery_tag=method.delivery_tag)  # in the callback, '
              'with auto_ack=False'),
       points=2, params={"queue": "lab03.tasks"}, read_only=True)
def all_acked(endpoints: Endpoints, queue: str) -> str:
    """The queue exists, no message waits in it, and no consumer holds one unacknowledged."""
    state = _settle(lambda: queue_state(endpoints, queue),
                    lambda s: s is not None and s.messages == 0 and s.consumers == 0)
    state = inspectable(state, queue)
    if state.consumers:
        raise NotYet(f"queue {queue!r} still has {_plural(state.consumers, 'consumer')}: close "
                     "the channel when you are done")
    if state.messages:
        raise NotYet(f"{_plural(state.messages, 'message')} went back to queue {queue!r}")
    return f"queue {queue!r} is empty: every message was acknowledged"


#: Lab 03's support tickets, oldest first, and their levels, most urgent first.
SUPPORT_TICKETS = (("printer jammed", "low"), ("invoice 17 wrong", "normal"),
                   ("server down", "urgent"), ("new mouse", "low"), ("refund 42", "normal"),
                   ("disk full", "urgent"))
SUPPORT_LEVELS = ("urgent", "normal", "low")
#: Messages the priority check reads at most (a student may publish the tickets many times).
_PRIORITY_PEEK = 50


@check("03.priority-order", "urgent tickets first, from a priority queue",
       hint=('A queue reorders messages only if it was declared to, and only by a number that '
              'each message carries: which queue argument and which message property are '
              'those?',
             'Declare lab03.support with the queue argument x-max-priority (three levels are '
              'enough), and publish each ticket with the priority property taken from its '
              'level: urgent highest, low lowest, equal levels equal priorities.',
             "channel.queue_declare(queue='lab03.support', durable=True, "
              "arguments={'x-max-priority': 3}); "
              "channel.basic_publish(exchange='', routing_key='lab03.support', body=ticket, "
              "properties=pika.BasicProperties(priority={'low': 1, 'normal': 2, "
              "'urgent': 3}[level]))"),
       points=2,
       params={"queue": "lab03.support", "tickets": SUPPORT_TICKETS, "levels": SUPPORT_LEVELS})
def priority_order(endpoints: Endpoints, queue: str, tickets: tuple[tuple[str, str], ...],
                   levels: tuple[str, ...]) -> str:
    """A priority queue holds the tickets and hands them out most urgent level first.

    ``tickets`` are (body, level) in publishing order and ``levels`` rank the levels, most
    urgent first. The check takes what the queue holds with ``basic_get`` without acking (so
    in the order a consumer would get it) and closes its connection, which puts every
    message back where it was. It passes when the queue was declared with
    ``x-max-priority``, holds exactly the tickets, hands them out by level (oldest first
    among equals), and the order comes from the messages' own ``priority`` property: higher
    for a more urgent level, equal for equal levels.
    """
    state = _settle(lambda: queue_state(endpoints, queue),
                    lambda s: s is not None and (s.messages or 0) >= len(tickets))
    state = inspectable(state, queue)
    arguments = management_json(endpoints, _queue_path(endpoints, queue)).get("arguments")
    maximum = arguments.get("x-max-priority") if isinstance(arguments, dict) else None
    if not maximum:
        raise NotYet(f"queue {queue!r} is not a priority queue: it was declared without "
                     "x-max-priority, so it delivers in arrival order")
    taken: list[tuple[str, int | None]] = []
    with _channel(endpoints) as channel:
        for _ in range(_PRIORITY_PEEK):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            taken.append((body.decode(errors="replace"), properties.priority))
    # Closing the check's connection puts the unacknowledged messages back, in order.
    rank = {level: position for position, level in enumerate(levels)}
    wanted = [body for body, level in sorted(tickets, key=lambda t: rank[t[1]])]
    got = [body for body, _ in taken]
    if sorted(got) != sorted(wanted):
        raise NotYet(f"queue {queue!r} holds {_plural(len(got), 'message')}, not the "
                     f"{len(wanted)} tickets once each: run the ticket cell again, it starts "
                     "from an empty queue")
    level_of, priority_of = dict(tickets), dict(taken)
    for body in wanted:  # most urgent first, so a message names what matters most
        if priority_of[body] is None:
            raise NotYet(f"ticket {body!r} carries no priority: a queue orders messages only "
                         "by the priority each one carries")
    for first in wanted:
        for second in wanted:
            if (rank[level_of[first]] < rank[level_of[second]]
                    and (priority_of[first] or 0) <= (priority_of[second] or 0)):
                raise NotYet(f"the {level_of[first]} ticket {first!r} has priority "
                             f"{priority_of[first]}, not higher than the {level_of[second]} "
                             f"ticket {second!r} ({priority_of[second]})")
            if level_of[first] == level_of[second] and priority_of[first] != priority_of[second]:
                raise NotYet(f"the {level_of[first]} tickets {first!r} and {second!r} have "
                             f"different priorities ({priority_of[first]}, "
                             f"{priority_of[second]}): equal levels, equal priorities")
    if got != wanted:
        raise NotYet(f"an agent would get the tickets as {', '.join(map(repr, got))}: "
                     f"x-max-priority is {maximum}, and a priority above it counts as "
                     f"{maximum}")
    return (f"priority queue {queue!r} hands an agent the {len(got)} tickets "
            f"{', then '.join(levels)}, the oldest first among equals")


#: Jobs the crash check publishes; at 50 ms a job the worker needs about 2 s for all of them.
CRASH_JOBS = 40
#: Results the crash check waits for before it kills the worker: it is working by then.
_KILL_AFTER = 2
#: Seconds to wait for a consumer, for the first results, and for the queue after the kill.
_WORKER_TIMEOUT = 5.0
_RESULTS_TIMEOUT = 10.0
#: The management API lists a new connection within one statistics interval (5 s by default).
_CONNECTION_TIMEOUT = 10.0


@check("03.no-loss-on-crash", "no job lost when the worker dies",
       hint=('A job is safe only while the broker still holds it: when does your worker '
              'let the broker forget a job, and how many jobs does the broker hand it at '
              'once?',
             'Consume with manual acknowledgements (auto_ack off), acknowledge each job only '
              'after its result is published, and let the worker hold one unacknowledged job '
              'at a time (prefetch count 1).',
             'ch.basic_qos(prefetch_count=1); '
              "for method, properties, body in ch.consume('lab03.jobs', "
              'inactivity_timeout=0.1): ... worker.handle(ch, body); '
              'ch.basic_ack(method.delivery_tag)'),
       points=2,
       params={"jobs": "lab03.jobs", "results": "lab03.done", "worker": "lab03-worker"})
def no_loss_on_crash(endpoints: Endpoints, jobs: str, results: str, worker: str,
                     count: int = CRASH_JOBS) -> str:
    """Kill the worker mid-stream: every job must have a result or wait in its queue again.

    The worker is whatever consumes ``jobs`` over connections that name themselves
    ``worker`` (the client-provided ``connection_name``, e.g.
    ``mqkit.amqp_connection(endpoints, name='lab03-worker')``). The check empties both
    queues, publishes ``count`` jobs, waits until the worker has published a few results,
    force-closes the worker's connections (``DELETE /api/connections/{name}``, as a crash
    would drop them), waits until the broker has taken back what the worker held
    unacknowledged, and passes when results + jobs still in the queue >= ``count``. An
    ``auto_ack`` worker loses every job the broker had already handed it. Every wait is
    bounded; the worker stays dead afterwards (run its cell again to restart it).
    """
    import pika

    with _channel(endpoints) as channel:
        if _counts(channel, results) is None:
            raise NotYet(f"there is no queue {results!r} for the results")
        state = _poll(lambda: _counts(channel, jobs), lambda s: s is None or s[1] > 0,
                      _WORKER_TIMEOUT)
        if state is None:
            raise NotYet(f"there is no queue {jobs!r}")
        if state[1] == 0:
            raise NotYet(f"nothing consumes {jobs!r}: start the worker (run the cell that "
                         "creates it), then run this check again")
        names = _poll(lambda: _connections_named(endpoints, worker), bool,
                      _CONNECTION_TIMEOUT)
        if not names:
            raise NotYet(f"{jobs!r} has a consumer, but no connection is named {worker!r}: "
                         "the check stops the worker by its connection's name")
        channel.queue_purge(queue=jobs)
        channel.queue_purge(queue=results)
        channel.confirm_delivery()
        for number in range(1, count + 1):
            channel.basic_publish(exchange="", routing_key=jobs,
                                  body=f"job {number} of {count} (self-check)".encode(),
                                  properties=pika.BasicProperties(delivery_mode=2))
        done = _poll(lambda: _counts(channel, results), lambda s: s is None or s[0] >= _KILL_AFTER,
                     _RESULTS_TIMEOUT)
        if done is None or done[0] < _KILL_AFTER:
            raise NotYet(f"the worker published no result to {results!r} within "
                         f"{_RESULTS_TIMEOUT:.0f} s of {count} jobs arriving")
        _kill(endpoints, _connections_named(endpoints, worker) or names)
        left = _poll(lambda: _counts(channel, jobs), lambda s: s is None or s[1] == 0,
                     _WORKER_TIMEOUT)
        if left is not None and left[1] > 0:
            raise NotYet(f"after the worker's connection was closed, {jobs!r} still has "
                         f"{_plural(left[1], 'consumer')}: only the worker may take its jobs")
        if done[0] >= count:
            raise NotYet(f"the worker finished all {count} jobs before the check could stop "
                         "it, so nothing was tested: run the check again")
        kept = _poll(lambda: _sum_counts(channel, (results, jobs)), lambda n: n >= count,
                     SETTLE_TIMEOUT)
    if kept < count:
        raise NotYet(f"jobs were lost when the worker was killed mid-stream: fewer than the "
                     f"{count} jobs published have a result in {results!r} or wait in "
                     f"{jobs!r} again")
    return (f"the worker was killed mid-stream and no job was lost: each of the {count} "
            f"jobs has a result in {results!r} or waits in {jobs!r} again")


def _counts(channel: Any, queue: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of ``queue`` by a passive declare, or None when missing.

    The check's channel must survive a missing queue, so existence is asked first on a
    throwaway channel of the same connection.
    """
    import pika.exceptions

    probe = channel.connection.channel()
    try:
        ok = probe.queue_declare(queue=queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    probe.close()
    return ok.method.message_count, ok.method.consumer_count


def _sum_counts(channel: Any, queues: tuple[str, ...]) -> int:
    return sum((_counts(channel, queue) or (0, 0))[0] for queue in queues)


def _poll(read: Callable[[], T], is_done: Callable[[T], bool], timeout: float) -> T:
    """Like :func:`_settle`, with its own bound and a shorter step (the worker is fast)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not is_done(value) and time.monotonic() < deadline:
        time.sleep(_POLL / 2)
        value = read()
    return value


def _connections_named(endpoints: Endpoints, name: str) -> list[str]:
    """Server-side names of this vhost's open connections whose client named them ``name``."""
    vhost = endpoints.amqp.vhost or "/"
    found = ManagementClient(endpoints, timeout=5).get("connections")
    return [c["name"] for c in found or []
            if c.get("vhost") == vhost
            and isinstance(c.get("client_properties"), dict)
            and c["client_properties"].get("connection_name") == name]


def _kill(endpoints: Endpoints, names: list[str]) -> None:
    """Force-close connections as a crash would drop them (a gone one is fine)."""
    api = ManagementClient(endpoints, timeout=5)
    for name in names:
        with contextlib.suppress(ResourceNotFound):
            api.request("DELETE", f"connections/{urllib.parse.quote(name, safe='')}",
                        headers={"X-Reason": "self-check 03.no-loss-on-crash stopped this "
                                             "worker mid-stream"})


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

