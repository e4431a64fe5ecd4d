"""The AMQP checks against a real RabbitMQ: each verdict comes from real broker state."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

import pika
import pytest

from mqkit.clients.amqp import amqp_connection
from mqkit.grading import Check, Status, get_check
from mqkit.grading.amqp import (
    CRASH_JOBS,
    all_acked,
    durable_queue,
    persistent_message,
    queue_has_messages,
)

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



def test_quorum_cases_want_a_persistent_and_a_transient_message_in_quorum_queues(
        brokers, amqp) -> None:
    _connection, channel, name = amqp
    persistent_queue, transient_queue = f"{name}.persistent", f"{name}.transient"
    check = get_check("02.quorum-cases")
    run = lambda: check.run(brokers, persistent_queue=persistent_queue,  # noqa: E731
                            transient_queue=transient_queue)
    quorum = {"x-queue-type": "quorum"}
    try:
        assert run().message == f"there is no queue {persistent_queue!r}"
        channel.queue_declare(queue=persistent_queue, durable=True, arguments=quorum)
        channel.queue_declare(queue=transient_queue, durable=True)  # classic: wrong type
        channel.basic_publish("", persistent_queue, b"p", pika.BasicProperties(delivery_mode=2))
        assert run().message == (f"queue {transient_queue!r} is a classic queue, not a "
                                 "quorum queue")
        channel.queue_delete(queue=transient_queue)
        channel.queue_declare(queue=transient_queue, durable=True, arguments=quorum)
        channel.basic_publish("", transient_queue, b"p", pika.BasicProperties(delivery_mode=2))
        result = run()
        assert result.status is Status.FAILED
        assert result.message == (f"quorum queue {transient_queue!r} holds no transient "
                                  "message (delivery_mode=1)")
        assert result.hints[0].startswith("Each quorum case is a quorum queue")
        channel.basic_publish("", transient_queue, b"t")  # no properties: transient
        result = run()
        assert result.is_passed, result.line()
        assert result.points == 2
        # The peek puts the messages back (a quorum queue takes a moment to requeue them).
        deadline = time.monotonic() + 2
        while (channel.queue_declare(queue=transient_queue, passive=True).method.message_count
               < 2 and time.monotonic() < deadline):
            time.sleep(0.05)
        assert channel.queue_declare(queue=transient_queue, passive=True).method.message_count == 2
    finally:
        for queue in (persistent_queue, transient_queue):
            channel.queue_delete(queue=queue)


def test_quorum_cases_fail_on_a_transient_message_where_a_persistent_one_belongs(
        brokers, amqp) -> None:
    _connection, channel, name = amqp
    persistent_queue, transient_queue = f"{name}.persistent", f"{name}.transient"
    try:
        for queue in (persistent_queue, transient_queue):
            channel.queue_declare(queue=queue, durable=True,
                                  arguments={"x-queue-type": "quorum"})
            channel.basic_publish("", queue, b"t", pika.BasicProperties(delivery_mode=1))
        result = get_check("02.quorum-cases").run(brokers, persistent_queue=persistent_queue,
                                                  transient_queue=transient_queue)
        assert result.status is Status.FAILED
        assert result.message == (f"quorum queue {persistent_queue!r} holds no persistent "
                                  "message (delivery_mode=2)")
    finally:
        for queue in (persistent_queue, transient_queue):
            channel.queue_delete(queue=queue)

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


# -- 03.no-loss-on-crash: the check kills a real worker mid-stream ------------------------


class _Worker:
    """A background worker like lab 03's: its own named connection, 50 ms per job."""

    def __init__(self, url: str, jobs: str, results: str, name: str, *, auto_ack: bool):
        self.url, self.jobs, self.results, self.name = url, jobs, results, name
        self.auto_ack, self.error = auto_ack, None
        self.handled = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        connection = None
        try:
            connection = amqp_connection(self.url, name=self.name)
            channel = connection.channel()
            if not self.auto_ack:
                channel.basic_qos(prefetch_count=1)
            for method, _properties, body in channel.consume(
                    self.jobs, auto_ack=self.auto_ack, inactivity_timeout=0.1):
                if self.stopping.is_set():
                    break
                if method is None:
                    continue
                time.sleep(0.05)
                channel.basic_publish("", self.results, b"done: " + body)
                if not self.auto_ack:
                    channel.basic_ack(method.delivery_tag)
                self.handled += 1
        except Exception as exc:
            self.error = exc
        finally:
            if connection is not None and connection.is_open:
                connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


@pytest.fixture
def crash_queues(brokers):
    """Unique jobs and results queues and worker name; the worker is stopped after."""
    suffix = uuid.uuid4().hex[:10]
    jobs, results = f"test.crash.jobs.{suffix}", f"test.crash.done.{suffix}"
    connection = pika.BlockingConnection(pika.URLParameters(brokers.amqp_url))
    channel = connection.channel()
    for name in (jobs, results):
        channel.queue_declare(queue=name, durable=True)
    workers: list[_Worker] = []
    yield channel, {"jobs": jobs, "results": results, "worker": f"test-worker-{suffix}"}, workers
    for worker in workers:
        worker.stop()
    for name in (jobs, results):
        channel.queue_delete(queue=name)
    connection.close()


def _ready(channel, queue: str) -> int:
    return channel.queue_declare(queue=queue, passive=True).method.message_count


def test_no_loss_on_crash_passes_for_a_worker_that_acks_after_its_result(
        brokers, crash_queues) -> None:
    channel, params, workers = crash_queues
    worker = _Worker(brokers.amqp_url, params["jobs"], params["results"], params["worker"],
                     auto_ack=False)
    workers.append(worker)
    result = get_check("03.no-loss-on-crash").run(brokers, **params)
    assert result.is_passed, result.line()
    assert result.points == 2
    # The check really killed it, mid-stream: some jobs were done, others wait again.
    worker.thread.join(timeout=5)
    assert isinstance(worker.error, pika.exceptions.ConnectionClosedByBroker)
    assert worker.error.reply_code == 320
    assert "03.no-loss-on-crash" in worker.error.reply_text
    done, waiting = _ready(channel, params["results"]), _ready(channel, params["jobs"])
    assert done >= 2
    assert waiting > 0
    assert done + waiting >= CRASH_JOBS


def test_no_loss_on_crash_fails_for_an_auto_ack_worker(brokers, crash_queues) -> None:
    channel, params, workers = crash_queues
    worker = _Worker(brokers.amqp_url, params["jobs"], params["results"], params["worker"],
                     auto_ack=True)
    workers.append(worker)
    result = get_check("03.no-loss-on-crash").run(brokers, **params)
    assert result.status is Status.FAILED
    assert result.message.startswith("jobs were lost when the worker was killed mid-stream")
    assert result.hint.startswith("A job is safe only while the broker still holds it")
    worker.thread.join(timeout=5)
    assert not worker.thread.is_alive()
    # What the broker still holds falls short: the auto-acked jobs died with the worker.
    assert _ready(channel, params["results"]) + _ready(channel, params["jobs"]) < CRASH_JOBS


def test_no_loss_on_crash_needs_a_named_running_worker(brokers, crash_queues,
                                                       monkeypatch) -> None:
    import mqkit.grading.amqp as amqp_checks

    monkeypatch.setattr(amqp_checks, "_WORKER_TIMEOUT", 0.5)
    monkeypatch.setattr(amqp_checks, "_CONNECTION_TIMEOUT", 1.0)
    channel, params, workers = crash_queues
    check = get_check("03.no-loss-on-crash")
    result = check.run(brokers, **params)
    assert result.status is Status.FAILED
    assert result.message.startswith(f"nothing consumes {params['jobs']!r}")
    # A consumer under another connection name is not the worker: the check stops nothing.
    workers.append(_Worker(brokers.amqp_url, params["jobs"], params["results"],
                           "someone-else", auto_ack=False))
    deadline = time.monotonic() + 5
    while (channel.queue_declare(queue=params["jobs"], passive=True).method.consumer_count == 0
           and time.monotonic() < deadline):
        time.sleep(0.05)
    result = check.run(brokers, **params)
    assert result.status is Status.FAILED
    assert f"no connection is named {params['worker']!r}" in result.message
    assert workers[0].thread.is_alive()
    assert _ready(channel, params["jobs"]) == 0  # nothing was published for it
