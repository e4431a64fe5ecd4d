"""Checks of lab 00's concepts: messaging decouples a producer from its consumer.

The decoupling check reads the *receipts* that lab 00's consumer process leaves in a queue:
a JSON record per run with the consumer's process id, how many messages were waiting when
it started, and what it received (with the process id each producer stamped on its
messages). It takes them with ``basic_get`` without acking and closes its connection, so
the broker puts them back.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mqkit.clients.amqp import amqp_connection
from mqkit.endpoints import Endpoints
from mqkit.grading.amqp import _channel, management_json, queue_state
from mqkit.grading.registry import NotYet, check

#: Seconds the check waits for the management API's connection list to be fresh.
FRESH_LIST_TIMEOUT = 8.0
#: Receipts read at most (a student may run the consumer many times).
MAX_RECEIPTS = 50


def receipts(endpoints: Endpoints, queue: str) -> list[dict[str, Any]]:
    """The JSON receipts in ``queue``, oldest first; the messages stay in the queue."""
    found: list[dict[str, Any]] = []
    if queue_state(endpoints, queue) is None:
        return found
    with _channel(endpoints) as channel:
        for _ in range(MAX_RECEIPTS):
            method, _properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            try:
                record = json.loads(body)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
    # Closing the check's connection returns the unacked receipts to the queue, in order.
    return found


def open_connections(endpoints: Endpoints, name: str) -> list[str]:
    """The open connections on the endpoints' vhost whose client-provided name is ``name``.

    The management API lists connections from statistics it collects every few seconds
    (5 s by default), so a list read at once may miss a connection opened just before, or
    still show one just closed. The check opens a probe connection of its own and reads
    until the probe is listed: the list is then at least as fresh as the probe.
    """
    import secrets

    probe_name = f"mqkit-check-{secrets.token_hex(4)}"
    probe = amqp_connection(endpoints.amqp.url(), name=probe_name, timeout=5)
    try:
        deadline = time.monotonic() + FRESH_LIST_TIMEOUT
        while True:
            listed = [(c.get("name", ""), (c.get("client_properties") or {}).get(
                "connection_name")) for c in management_json(endpoints, "connections")
                if c.get("vhost") == (endpoints.amqp.vhost or "/")]
            if any(given == probe_name for _, given in listed) or time.monotonic() > deadline:
                return [name_ for name_, given in listed if given == name]
            time.sleep(0.25)
    finally:
        probe.close()


@check("00.decoupled", "a consumer in another process gets what was sent while none ran",
       hint=('Messaging decouples in time: the producer may finish and go away before any '
              'consumer exists, and the queue keeps the messages. Did your producer send '
              'every order, close its connection, and only then did the consumer start?',
             'In the producer cell: open a connection and a channel, declare the durable '
              'queue lab00.inbox, publish each order through the default exchange with '
              "the header producer_pid set to os.getpid(), then close the connection. "
              'Then run the consumer cell once.',
             "producer = mqkit.amqp_connection(endpoints, name='lab00-producer'); "
              'channel = producer.channel(); '
              "channel.queue_declare(queue='lab00.inbox', durable=True); "
              "for order in ORDERS: channel.basic_publish(exchange='', "
              "routing_key='lab00.inbox', body=order, properties=pika.BasicProperties("
              "headers={'producer_pid': os.getpid()}, delivery_mode=2)); "
              'producer.close()'),
       params={"queue": "lab00.receipts", "orders": 5, "producer_name": "lab00-producer"})
def decoupled(endpoints: Endpoints, queue: str, orders: int, producer_name: str) -> str:
    """The latest receipt: ``orders`` messages waited, all received, by another process."""
    found = receipts(endpoints, queue)
    if not found:
        raise NotYet(f"no receipt in {queue!r} yet: run the consumer cell, which starts the "
                     "consumer process")
    receipt = found[-1]
    waiting = receipt.get("waiting_at_start", 0)
    received = receipt.get("received", [])
    producers = set(receipt.get("producer_pids", []))
    consumer = receipt.get("consumer_pid")
    if receipt.get("consumers_at_start", 0):
        raise NotYet("another consumer was already reading the queue when the consumer process "
                     "started: the orders must wait with no consumer at all")
    if waiting < orders:
        raise NotYet(f"{waiting} of the {orders} orders were waiting when the consumer started: "
                     "send them all first, with no consumer running")
    if len(received) < orders:
        raise NotYet(f"the consumer received {len(received)} of {orders} orders")
    if not producers:
        raise NotYet("the orders carry no producer_pid header: the receipt cannot tell which "
                     "process sent them")
    if consumer in producers:
        raise NotYet("the consumer ran in the producer's own process")
    if endpoints.management is not None and open_connections(endpoints, producer_name):
        raise NotYet(f"the producer's connection {producer_name!r} is still open: a producer "
                     "that is done closes it")
    return (f"{len(received)} orders waited in the queue with no consumer and no producer "
            "connection, then a consumer in another process received them all")
