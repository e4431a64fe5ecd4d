"""Checks of labs 08 (request/reply) and 09 (guaranteed delivery).

The RPC checks *behave* like a client: they send requests to the lab's request queue with a
``reply_to`` (direct reply-to) and a ``correlation_id`` and wait for the matching answers,
so they pass only while a server answers correctly; the poison check also sends a request
no server can parse and looks at what became of the servers and of that request. The
dead-letter check peeks at the dead-letter queue through the management API (the messages
are put back).
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from typing import Any

from mqkit.endpoints import Endpoints
from mqkit.grading.amqp import (
    _channel,
    _queue_path,
    _settle,
    management_json,
    persistent_message,
    queue_state,
)
from mqkit.grading.registry import NotYet, check

#: Seconds the RPC check waits for an answer.
RPC_TIMEOUT = 3.0
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


@check("08.rpc-server", "an RPC server that answers",
       hint=('The client waits on its own reply queue and matches answers by id: '
              'does your server send the answer where the request said, tagged with '
              "the request's id?",
             "In answer(), publish the response to the queue named in the request's "
              "reply_to property, through the default exchange, copying the request's "
              'correlation_id.',
             "ch.basic_publish('', properties.reply_to, response, "
              'properties=pika.BasicProperties(correlation_id=properties.correlation_id))'),
       points=2, params={"queue": "lab08.requests", "request": "10", "expected": "55"})
def rpc_server_answers(endpoints: Endpoints, queue: str, request: str, expected: str) -> str:
    """A server consuming ``queue`` answers ``request`` with ``expected`` to ``reply_to``."""
    import pika

    correlation_id = f"check-{secrets.token_hex(4)}"
    replies: list[tuple[Any, bytes]] = []
    with _channel(endpoints) as channel:
        try:
            consumers = channel.queue_declare(queue, passive=True).method.consumer_count
        except Exception:
            raise NotYet(f"there is no queue {queue!r}") from None
        if not consumers:
            raise NotYet(f"no server consumes from {queue!r}: start one first")
        channel.basic_consume(DIRECT_REPLY_TO, lambda _c, _m, p, b: replies.append((p, b)),
                              auto_ack=True)
        channel.basic_publish("", queue, request.encode(), pika.BasicProperties(
            reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id))
        deadline = time.monotonic() + RPC_TIMEOUT
        while time.monotonic() < deadline and not replies:
            channel.connection.process_data_events(time_limit=0.1)
    if not replies:
        raise NotYet(f"no reply within {RPC_TIMEOUT:g} s to a request sent to {queue!r}")
    properties, body = replies[0]
    if properties.correlation_id != correlation_id:
        raise NotYet(f"the reply carries correlation_id {properties.correlation_id!r}, not the "
                     "request's")
    if body.decode(errors="replace") != expected:
        raise NotYet(f"the reply to {request!r} was {body!r}, expected {expected!r}")
    return f"the server answered {request!r} with {expected!r} and the request's correlation_id"


#: Seconds the poison check waits for the management API's statistics to count its requests
#: (a new round every 5 s by default; a busy broker can be later).
STATS_LAG = 20.0
#: Seconds it then waits for a count above 0 to drop: one more round and a margin.
STATS_ROUND = 6.0


@check("08.poison-message", "an RPC server that survives a poison request",
       hint=("A request the server cannot handle must not kill it, and must not go back "
              "to the queue to kill the next one: what can a server do with a request it "
              "will never be able to answer, so that its client learns at once?",
             "In safe_handle, catch the error of turning the body into a number; send "
              "the client an empty reply whose 'error' header says what was wrong (to "
              "reply_to, with the request's correlation_id), then reject the request "
              "without requeue. A good request is answered, then acked.",
             "try: number = int(body)\n"
              "except ValueError:\n"
              "    ch.basic_publish('', properties.reply_to, b'', pika.BasicProperties("
              "correlation_id=properties.correlation_id, headers={'error': 'not a number'}))\n"
              "    ch.basic_reject(delivery_tag=method.delivery_tag, requeue=False)\n"
              "    return"),
       points=3, params={"queue": "lab08.requests", "poison": "ten", "request": "10",
                         "expected": "55"})
def rpc_server_survives_poison(endpoints: Endpoints, queue: str, poison: str, request: str,
                               expected: str) -> str:
    """Servers on ``queue`` survive ``poison`` and drop it, and still answer ``request``.

    Best with an error reply to the poison request. The check sends the poison request
    first, then the good one, both with direct reply-to and correlation ids of its own.
    Requests of the check's left waiting in a queue that nobody consumes any more are taken
    out again, so later cells do not meet them.
    """
    import pika

    tag = secrets.token_hex(4)
    poison_id, request_id = f"check-poison-{tag}", f"check-request-{tag}"
    replies: dict[str, list[tuple[Any, bytes]]] = {poison_id: [], request_id: []}

    def on_reply(_channel: Any, _method: Any, properties: Any, body: bytes) -> None:
        if properties.correlation_id in replies:
            replies[properties.correlation_id].append((properties, body))

    with _channel(endpoints) as channel:
        try:
            before = channel.queue_declare(queue, passive=True).method.consumer_count
        except Exception:
            raise NotYet(f"there is no queue {queue!r}") from None
        if not before:
            raise NotYet(f"no server consumes from {queue!r}: start one first (a server that "
                         "died on a poison request consumes nothing)")
        published = _queue_stats(endpoints, queue)[0] + 2  # the statistics after our two
        channel.basic_consume(DIRECT_REPLY_TO, on_reply, auto_ack=True)
        for body, correlation_id in ((poison, poison_id), (request, request_id)):
            channel.basic_publish("", queue, body.encode(), pika.BasicProperties(
                reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id))
        deadline = time.monotonic() + RPC_TIMEOUT
        while time.monotonic() < deadline and not (replies[poison_id] and replies[request_id]):
            channel.connection.process_data_events(time_limit=0.1)
        channel.connection.process_data_events(time_limit=0.3)  # a repeated answer, if any
        state = _settle(lambda: queue_state(endpoints, queue),
                        lambda s: s is not None and s.consumers == before)
        after = state.consumers if state is not None and state.consumers is not None else 0
        waiting = state.messages if state is not None and state.messages is not None else 0
        taken_back = _take_back(channel, queue, {poison_id, request_id}) if not after else 0

    problems = []
    if after < before:
        problems.append(f"{poison!r} stopped {before - after} of {before} server"
                        f"{'s' if before > 1 else ''}: a server must catch what it cannot "
                        "handle and go on")
    if not replies[request_id]:
        problems.append(f"no reply to the good request {request!r} within {RPC_TIMEOUT:g} s")
    elif replies[request_id][0][1].decode(errors="replace") != expected:
        problems.append(f"the reply to {request!r} was {replies[request_id][0][1]!r}, "
                        f"expected {expected!r}")
    answered = replies[poison_id]
    if len(answered) > 1:
        problems.append(f"{poison!r} was answered {len(answered)} times: it keeps coming "
                        "back to the queue (requeued)")
    elif after < before and not answered and (waiting or taken_back):
        problems.append(f"{poison!r} got no reply and went back to {queue!r}, to kill the "
                        "next server")
    elif not after < before:
        left = _messages_left(endpoints, queue, published)
        if left:
            problems.append(f"{queue!r} still holds {left} request{'s' if left > 1 else ''} "
                            f"(ready or unacknowledged) after {poison!r}: a request put back "
                            "comes again and again, one never settled blocks its server")
    if problems:
        taken = " (the check took its requests out again)" if taken_back else ""
        raise NotYet("; ".join(problems) + taken)
    if answered:
        error = (answered[0][0].headers or {}).get("error")
        poison_note = (f"got an error reply ({error})" if error is not None
                       else "got a reply without an 'error' header")
    else:
        poison_note = "got no reply (its client waits for its timeout)"
    return (f"the poison request {poison!r} {poison_note} and left {queue!r}; {request!r} was "
            f"answered with {expected!r}; all {after} server{'s' if after > 1 else ''} "
            "still consume")


def _take_back(channel: Any, queue: str, correlation_ids: set[str], limit: int = 100) -> int:
    """Remove the check's own requests from ``queue`` (nobody consumes it); return how many.

    Other messages are held unacknowledged meanwhile and go back, in order, when the
    check's channel closes.
    """
    taken = 0
    for _ in range(limit):
        method, properties, _body = channel.basic_get(queue)
        if method is None:
            break
        if properties.correlation_id in correlation_ids:
            channel.basic_ack(method.delivery_tag)
            taken += 1
    return taken


def _queue_stats(endpoints: Endpoints, queue: str) -> tuple[int, int | None]:
    """The management API's count of messages published to ``queue``, and of those in it."""
    info = management_json(endpoints, _queue_path(endpoints, queue))
    return (info.get("message_stats") or {}).get("publish", 0), info.get("messages")


def _messages_left(endpoints: Endpoints, queue: str, published: int) -> int:
    """Ready + unacknowledged messages in ``queue`` once the statistics count ``published``.

    The management API counts unacknowledged messages too (a passive declare does not), but
    its statistics lag (a new round every 5 s by default): only a round that counts the
    check's own publishes tells whether their requests are gone, and the queue's length is
    read until :data:`STATS_ROUND` seconds after it, the last reading counting. Without such
    a round within :data:`STATS_LAG` (statistics off, or a broker far behind), the answer is
    0: nothing could be seen.
    """
    deadline = time.monotonic() + STATS_LAG
    while True:
        seen, messages = _queue_stats(endpoints, queue)
        if seen >= published and messages is not None:
            break
        if time.monotonic() > deadline:
            return 0
        time.sleep(0.25)
    # The publish counter and the queue's length come from different statistics streams:
    # the round that counted the publishes may show the queue as it was before them. Only
    # the length read a full round later is sure to include them (and to have seen an
    # answered request acked): read to the end of it, never stopping early at 0.
    deadline = time.monotonic() + STATS_ROUND
    while time.monotonic() < deadline:
        time.sleep(0.25)
        messages = _queue_stats(endpoints, queue)[1]
    return messages or 0


@check("09.dead-lettered", "a rejected message in the dead-letter queue",
       hint=('A message the consumer refuses can be dead-lettered instead of lost or '
              'redelivered: how does a consumer refuse a message for good?',
             "Reject the message without requeueing it; the queue's "
              'x-dead-letter-exchange then routes it to lab09.dead.',
             'channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)'),
       params={"queue": "lab09.dead", "reason": "rejected"})
def dead_lettered(endpoints: Endpoints, queue: str, reason: str) -> str:
    """``queue`` holds a message dead-lettered for ``reason`` (its ``x-death`` header)."""
    from mqkit.grading.amqp import queue_has_messages

    queue_has_messages(endpoints, queue)
    messages = management_json(endpoints, _queue_path(endpoints, queue) + "/get", {
        "count": 20, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 200})
    reasons = []
    for message in messages:
        properties = message.get("properties")
        headers = properties.get("headers", {}) if isinstance(properties, dict) else {}
        reasons += [death.get("reason") for death in headers.get("x-death", [])]
    if reason not in reasons:
        raise NotYet(f"queue {queue!r} holds no message dead-lettered as {reason!r} "
                     f"(seen: {sorted(set(filter(None, reasons))) or 'none'})")
    return f"queue {queue!r} holds a message dead-lettered as {reason!r}"


@check("09.all-confirmed", "every nacked message published again until it arrived",
       hint=("Messages the broker refused never reached the queue, and the "
              "publisher let them go: what must a publisher do with a message whose "
              "confirm is a nack?",
             "In on_confirm, work out which delivery tags the confirm settles (with "
              "multiple, every outstanding tag up to its own); take each out of "
              "unconfirmed, and give the index of each nacked one to again_or_give_up.",
             "for t in ([t for t in unconfirmed if t <= tag] if multiple else [tag]):\n"
              "    index = unconfirmed.pop(t)\n"
              "    if nacked:\n"
              "        again_or_give_up(index)"),
       points=2, params={"queue": "lab09.arrived", "via": "lab09.limited",
                         "bodies": [f"msg {number}" for number in range(6)]})
def all_confirmed(endpoints: Endpoints, queue: str, via: str, bodies: list[str]) -> str:
    """``queue`` holds every one of ``bodies`` at least once, once ``via`` has drained.

    ``via`` is the limited queue the lab publishes to (its messages move on to ``queue``
    when they expire); the check waits until it is empty, then peeks at ``queue`` through
    the management API (the messages are put back).
    """
    state = _settle(lambda: queue_state(endpoints, via), lambda s: s is not None
                    and s.messages == 0)
    if state is None:
        raise NotYet(f"there is no queue {via!r}: run the cell that declares it")
    if queue_state(endpoints, queue) is None:
        raise NotYet(f"there is no queue {queue!r}: run the cell that declares it")
    messages = management_json(endpoints, _queue_path(endpoints, queue) + "/get", {
        "count": 10 * len(bodies), "ackmode": "ack_requeue_true", "encoding": "auto",
        "truncate": 200})
    arrived = Counter(message.get("payload") for message in messages)
    missing = [body for body in bodies if not arrived[body]]
    if missing:
        held = len(bodies) - len(missing)
        raise NotYet(f"{queue!r} holds {held} of the {len(bodies)} messages; missing: "
                     f"{', '.join(missing)}: the broker refused them (nack), and nobody "
                     "published them again")
    extra = sum(arrived[body] for body in bodies) - len(bodies)
    how = ("each exactly once" if not extra else
           f"at least once ({extra} duplicate{'s' if extra > 1 else ''})")
    return f"{queue!r} holds each of the {len(bodies)} messages, {how}"


# Lab 02's check function, applied to lab 09's queue.
check("09.survives-restart", "a confirmed persistent message survives a restart",
      hint=('After the restart the message was gone: both the queue and the message '
             'must be made to survive, and the publish confirmed.',
            'Declare lab09.orders durable and publish with the persistent delivery '
             'mode, with confirms on, before the restart.',
            "channel.queue_declare(queue='lab09.orders', durable=True); "
             "channel.basic_publish('', 'lab09.orders', body, "
             'properties=pika.BasicProperties(delivery_mode=2))'),
      params={"queue": "lab09.orders"})(persistent_message)
