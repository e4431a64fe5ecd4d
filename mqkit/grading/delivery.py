"""Checks of labs 08 (request/reply) and 09 (guaranteed delivery).

The RPC check *behaves* like a client: it sends a request to the lab's request queue with a
``reply_to`` (direct reply-to) and a ``correlation_id`` and waits for the matching answer,
so it passes only while a server answers correctly. The dead-letter check peeks at the
dead-letter queue through the management API (the messages are put back).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from mqkit.endpoints import Endpoints
from mqkit.grading.amqp import _channel, _queue_path, management_json, persistent_message
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
