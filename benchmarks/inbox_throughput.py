"""QueueInbox vs a raw pika consume loop on the same queue (goal: >= 0.8x, zero lost),
while a trivial "cell" on the main thread keeps running in under 100 ms.

Starts its own brokers through mqkit (process backend, temporary state directory). Run::

    .venv/bin/python benchmarks/inbox_throughput.py [--messages N] [--rounds N] [--record]
"""

from __future__ import annotations

import time
import uuid

try:  # run as `python -m benchmarks.NAME` or as `python benchmarks/NAME.py`
    from benchmarks._support import arguments, median, own_brokers, report
except ModuleNotFoundError:
    from _support import arguments, median, own_brokers, report  # type: ignore[no-redef]
from mqkit import clients
from mqkit.widgets import QueueInbox


def fill(channel, queue: str, n: int) -> None:
    for i in range(n):
        channel.basic_publish("", queue, str(i).encode())
    while channel.queue_declare(queue, passive=True).method.message_count < n:
        time.sleep(0.05)


def raw_consume(endpoints, queue: str, n: int, prefetch: int) -> tuple[float, int]:
    """The loop a lab would write: consume with manual acks until n arrived."""
    connection = clients.amqp_connection(endpoints, name="bench-raw-consumer")
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    seen: set[bytes] = set()
    start = time.perf_counter()
    for method, _properties, body in channel.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        seen.add(body)
        channel.basic_ack(method.delivery_tag)
        if len(seen) == n:
            break
    elapsed = time.perf_counter() - start
    channel.cancel()
    connection.close()
    return n / elapsed, n - len(seen)


def trivial_cell() -> int:
    return sum(range(1000))


def inbox_consume(endpoints, queue: str, n: int) -> tuple[float, int, float]:
    """QueueInbox (model and view) draining the queue; the main thread runs 'cells'."""
    seen: set[bytes] = set()
    inbox = QueueInbox(queue, endpoints, limit=20, start=False,
                       on_message=lambda message: seen.add(message.body))
    worst_cell = 0.0
    start = time.perf_counter()
    inbox.start()
    deadline = start + 120
    while inbox.model.count < n and time.perf_counter() < deadline:
        cell_start = time.perf_counter()
        trivial_cell()
        worst_cell = max(worst_cell, time.perf_counter() - cell_start)
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    inbox.close()
    return n / elapsed, n - len(seen), worst_cell


def main() -> None:
    args = arguments(__doc__ or "", messages=20000, rounds=3)
    n, rounds = args.messages, args.rounds
    with own_brokers() as endpoints:
        admin_connection = clients.amqp_connection(endpoints, name="bench-filler")
        channel = admin_connection.channel()
        queue = f"bench-inbox-{uuid.uuid4().hex[:6]}"
        channel.queue_declare(queue, durable=True)
        raws, inboxes, lost, cells = [], [], 0, []
        for _ in range(rounds):
            fill(channel, queue, n)
            rate, missing = raw_consume(endpoints, queue, n, prefetch=200)
            raws.append(rate)
            lost += missing
            fill(channel, queue, n)
            rate, missing, worst = inbox_consume(endpoints, queue, n)
            inboxes.append(rate)
            lost += missing
            cells.append(worst)
        left = channel.queue_declare(queue, passive=True).method.message_count
        channel.queue_delete(queue)
        admin_connection.close()
    ratio = median(inboxes) / median(raws)
    report("inbox_throughput", [
        f"{n} messages per round (queue pre-filled), median of {rounds} rounds, "
        "prefetch 200; the raw loop acks each message, QueueInbox acks in batches "
        "(multiple=True, up to 50 per frame); the inbox time includes opening its connection", "",
        "| raw pika consume msg/s | QueueInbox msg/s | ratio | lost | left in queue | "
        "slowest trivial cell |",
        "|---|---|---|---|---|---|",
        f"| {median(raws):,.0f} | {median(inboxes):,.0f} | {ratio:.2f}x "
        f"({'ok' if ratio >= 0.8 else 'MISSED'} >= 0.8x) | {lost} | {left} | "
        f"{max(cells) * 1000:.2f} ms ({'ok' if max(cells) < 0.1 else 'MISSED'} < 100 ms) |",
    ], args.record)


if __name__ == "__main__":
    main()
