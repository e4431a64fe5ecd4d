"""Lab 00's decoupling check against a real RabbitMQ: receipts, counts and the producer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pika
import pytest

from mqkit import amqp_connection
from mqkit.grading import Check, Status
from mqkit.grading.concepts import decoupled, receipts

pytestmark = pytest.mark.integration

# The consumer program of lab 00, reduced: it reads QUEUE and leaves a receipt in RECEIPTS.
CONSUMER = """
import json, os
import mqkit
queue, receipts = os.environ["QUEUE"], os.environ["RECEIPTS"]
connection = mqkit.amqp_connection(os.environ["URL"], name="test-consumer")
channel = connection.channel()
inbox = channel.queue_declare(queue=queue, durable=True).method
received, producers = [], set()
for method, properties, body in channel.consume(queue, inactivity_timeout=0.5):
    if method is None:
        break
    received.append(body.decode())
    producers.add((properties.headers or {}).get("producer_pid"))
    channel.basic_ack(delivery_tag=method.delivery_tag)
channel.cancel()
channel.queue_declare(queue=receipts, durable=True)
channel.basic_publish("", receipts, json.dumps({
    "consumer_pid": os.getpid(), "waiting_at_start": inbox.message_count,
    "consumers_at_start": inbox.consumer_count, "received": received,
    "producer_pids": sorted(p for p in producers if p is not None)}))
connection.close()
"""


@pytest.fixture
def names(brokers):
    suffix = uuid.uuid4().hex[:10]
    queue, receipt_queue = f"test.inbox.{suffix}", f"test.receipts.{suffix}"
    yield queue, receipt_queue, f"test-producer-{suffix}"
    with amqp_connection(brokers) as connection:
        for name in (queue, receipt_queue):
            connection.channel().queue_delete(queue=name)


def produce(brokers, queue: str, name: str, count: int = 5) -> pika.BlockingConnection:
    producer = amqp_connection(brokers, name=name)
    channel = producer.channel()
    channel.queue_declare(queue=queue, durable=True)
    for number in range(count):
        channel.basic_publish("", queue, f"order {number}",
                              pika.BasicProperties(headers={"producer_pid": os.getpid()}))
    return producer


def consume_in_another_process(brokers, queue: str, receipts_queue: str) -> None:
    subprocess.run([sys.executable, "-c", CONSUMER], check=True, timeout=60,
                   env={**os.environ, "URL": brokers.amqp_url, "QUEUE": queue,
                        "RECEIPTS": receipts_queue})


def check_for(receipt_queue: str, producer: str) -> Check:
    return Check("99.test", "test", "the hint", decoupled,
                 params={"queue": receipt_queue, "orders": 5, "producer_name": producer})


def test_decoupled_passes_only_for_a_closed_producer_and_a_later_consumer(brokers, names):
    queue, receipt_queue, producer_name = names
    check = check_for(receipt_queue, producer_name)
    assert "no receipt" in check.run(brokers).message

    producer = produce(brokers, queue, producer_name)
    consume_in_another_process(brokers, queue, receipt_queue)
    result = check.run(brokers)
    assert result.status is Status.FAILED
    assert "is still open" in result.message

    producer.close()
    result = check.run(brokers)
    assert result.is_passed, result.line()
    assert result.message.startswith("5 orders waited in the queue")
    # The check only peeked: the receipt is still there for the grader.
    assert len(receipts(brokers, receipt_queue)) == 1


def test_a_consumer_that_started_first_is_not_decoupling(brokers, names):
    queue, receipt_queue, producer_name = names
    consume_in_another_process(brokers, queue, receipt_queue)   # nothing waiting yet
    produce(brokers, queue, producer_name).close()
    result = check_for(receipt_queue, producer_name).run(brokers)
    assert result.status is Status.FAILED
    assert result.message.startswith("0 of the 5 orders were waiting")


def test_orders_without_a_producer_pid_are_not_enough(brokers, names):
    _queue, receipt_queue, producer_name = names
    with amqp_connection(brokers) as connection:
        channel = connection.channel()
        channel.queue_declare(queue=receipt_queue, durable=True)
        channel.basic_publish("", receipt_queue, json.dumps({
            "consumer_pid": 1, "waiting_at_start": 5, "consumers_at_start": 0,
            "received": ["a"] * 5, "producer_pids": []}))
    result = check_for(receipt_queue, producer_name).run(brokers)
    assert "no producer_pid header" in result.message
