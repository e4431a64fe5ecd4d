"""A class at a human pace: simulated students on the classroom broker, with what they saw.

Each simulated student does what labs 03 and 04 do, in their own namespace (their card's
AMQP URL): declares a durable work queue and a direct exchange with a queue for a stock,
then publishes one confirmed message a second (alternating between the two) and consumes
both queues with manual acks on a second connection. Every message carries the sender's
id and a sequence number, so the run counts what was confirmed but never arrived (lost) and
what arrived in the wrong student's queue (cross-student), and measures publish-to-consume
latency.

Students run as threads in several worker processes (one Python process would measure its
own GIL, not the broker). Every loop is bounded by the run's duration.

Example:
    >>> report = run_load(Classroom("course").record(), seconds=30)   # doctest: +SKIP
    >>> report.lost, report.cross, report.p99_ms                       # doctest: +SKIP
    (0, 0, 12.5)
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import random
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mqkit.classroom.record import ClassroomRecord

log = logging.getLogger(__name__)

#: The simulated lab's names (the labs' own: a namespace makes them private).
WORK_QUEUE = "lab03.tasks"
EXCHANGE = "lab04.stocks"
TICKER_QUEUE = "lab04.stock-A"
#: The lecture's stock: its name is the routing key.
STOCK = "Stock A"
#: Seconds a student waits for the last messages after the run before counting them lost.
DRAIN = 5.0


@dataclass
class StudentResult:
    """What one simulated student saw."""

    id: str
    confirmed: int = 0
    received: int = 0
    lost: int = 0
    cross: int = 0
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error: str = ""


@dataclass
class LoadReport:
    """The run: per-student results added up, and the latency percentiles.

    Attributes:
        students: simulated students.
        seconds: the publishing time.
        confirmed: messages the broker confirmed.
        received: messages consumed and acknowledged (each once).
        lost: confirmed messages that never arrived (must be 0).
        cross: messages that arrived in another student's queue (must be 0).
        duplicates: messages that arrived twice.
        p50_ms: median publish-to-consume latency.
        p99_ms: 99th percentile latency.
        errors: students whose run failed, with the reason.
    """

    students: int
    seconds: float
    confirmed: int = 0
    received: int = 0
    lost: int = 0
    cross: int = 0
    duplicates: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def run_load(record: ClassroomRecord, seconds: float = 30.0, *, students: int | None = None,
             processes: int = 4, rate: float = 1.0) -> LoadReport:
    """Simulate the classroom's students for ``seconds`` and report what they saw.

    Args:
        record: the classroom (its ready students' cards are used).
        seconds: how long each student publishes.
        students: how many of the classroom's students to simulate (default: all ready).
        processes: worker processes the students are spread over.
        rate: messages per second per student.
    """
    cards = [(s.id, record.urls(s)["MQKIT_AMQP_URL"])
             for s in sorted(record.students.values(), key=lambda s: s.id) if s.ready]
    cards = cards[:students] if students is not None else cards
    groups = [cards[i::processes] for i in range(processes) if cards[i::processes]]
    context = multiprocessing.get_context("spawn")  # no inherited pika sockets or threads
    with context.Pool(len(groups)) as pool:
        results = pool.starmap(_run_group, [(group, seconds, rate) for group in groups])
    report = LoadReport(len(cards), seconds)
    latencies: list[float] = []
    for group in results:
        for data in group:
            result = StudentResult(**data)
            report.confirmed += result.confirmed
            report.received += result.received
            report.lost += result.lost
            report.cross += result.cross
            report.duplicates += result.duplicates
            latencies += result.latencies_ms
            if result.error:
                report.errors[result.id] = result.error
    if latencies:
        report.p50_ms = round(statistics.median(latencies), 2)
        report.p99_ms = round(_percentile(latencies, 99), 2)
    return report


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))
    return ordered[index]


def _run_group(cards: list[tuple[str, str]], seconds: float,
               rate: float) -> list[dict[str, Any]]:
    """One worker process: a thread per student; their results as dicts."""
    results: list[dict[str, Any]] = [{} for _ in cards]

    def run(index: int, student: str, url: str) -> None:
        results[index] = asdict(_student(student, url, seconds, rate))

    threads = [threading.Thread(target=run, args=(i, s, u), name=f"student-{s}")
               for i, (s, u) in enumerate(cards)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + DRAIN + 120)
    return results


def _student(student: str, url: str, seconds: float, rate: float) -> StudentResult:
    """One student: declare, then publish confirmed and consume with acks until the end."""
    from mqkit.clients.amqp import amqp_connection

    result = StudentResult(student)
    sent: dict[int, float] = {}
    seen: set[int] = set()

    def on_message(channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        arrived = time.monotonic()
        message = json.loads(body)
        if message["student"] != student:
            result.cross += 1
        elif message["seq"] in seen:
            result.duplicates += 1
        else:
            seen.add(message["seq"])
            result.received += 1
            if message["seq"] in sent:
                result.latencies_ms.append((arrived - sent[message["seq"]]) * 1000)
        channel.basic_ack(method.delivery_tag)

    try:
        publisher = amqp_connection(url, name=f"load-{student}-pub")
        consumer = amqp_connection(url, name=f"load-{student}-sub")
    except Exception as exc:
        result.error = f"connect: {exc}"
        return result
    try:
        setup = publisher.channel()
        setup.queue_declare(WORK_QUEUE, durable=True)
        setup.exchange_declare(EXCHANGE, "direct", durable=True)
        setup.queue_declare(TICKER_QUEUE, durable=True)
        setup.queue_bind(TICKER_QUEUE, EXCHANGE, STOCK)
        for queue in (WORK_QUEUE, TICKER_QUEUE):
            setup.queue_purge(queue)  # a run starts from empty queues
        channel = publisher.channel()
        channel.confirm_delivery()
        sub = consumer.channel()
        sub.basic_qos(prefetch_count=10)
        for queue in (WORK_QUEUE, TICKER_QUEUE):
            sub.basic_consume(queue, on_message)
        # Students do not start at the same instant; spread the first publishes.
        next_at = time.monotonic() + random.uniform(0, 1 / rate)
        end = time.monotonic() + seconds
        seq = 0
        while time.monotonic() < end:
            consumer.process_data_events(time_limit=max(0.0, next_at - time.monotonic()))
            if time.monotonic() < next_at:
                continue
            exchange, key = ("", WORK_QUEUE) if seq % 2 == 0 else (EXCHANGE, STOCK)
            body = json.dumps({"student": student, "seq": seq})
            sent[seq] = time.monotonic()
            channel.basic_publish(exchange, key, body)  # returns once confirmed
            result.confirmed += 1
            seq += 1
            next_at += 1 / rate
        drain_end = time.monotonic() + DRAIN
        while len(seen) < result.confirmed and time.monotonic() < drain_end:
            consumer.process_data_events(time_limit=0.2)
        result.lost = result.confirmed - len(seen & set(range(result.confirmed)))
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log.warning("simulated student %s failed: %s", student, result.error)
    finally:
        for connection in (publisher, consumer):
            if connection.is_open:
                connection.close()
    return result
