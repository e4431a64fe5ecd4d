"""Publisher confirms one at a time vs in batches, persistent messages (goal: batched >= 3x).

Every message is persistent (``delivery_mode=2``) and goes to a durable classic queue, so
RabbitMQ confirms it only once it is written to disk. Three ways to wait for confirms:

* blocking, one at a time — pika's ``BlockingChannel`` after ``confirm_delivery()``:
  ``basic_publish`` returns only when the broker confirmed that message (what labs use);
* async, window 1 — pika's ``SelectConnection`` with a confirm callback, publishing the
  next message when the previous one is confirmed (the same wait, without the blocking
  adapter, so the comparison is not about adapter overhead);
* async, window N — the same code publishing N messages, then waiting until the broker
  confirmed all N (it acks several with one ``multiple=True`` frame and syncs the disk
  once for many). Nothing is published beyond the window until the whole window is
  confirmed, so at most N messages are ever unconfirmed — a real publisher would retry those.

Zero loss: after every round the queue's message count must equal what was published and
confirmed, and no nack may arrive. Starts its own brokers through mqkit (process backend,
temporary state directory). Run::

    .venv/bin/python benchmarks/confirms.py [--messages N] [--rounds N] [--window N] [--record]
"""

from __future__ import annotations

import argparse
import time
import uuid

import pika
from pika.spec import Basic

try:  # run as `python -m benchmarks.NAME` or as `python benchmarks/NAME.py`
    from benchmarks._support import median, own_brokers, report
except ModuleNotFoundError:
    from _support import median, own_brokers, report  # type: ignore[no-redef]

PERSISTENT = pika.BasicProperties(delivery_mode=2)
BODY = b"x" * 64


def blocking_one_at_a_time(url: str, queue: str, total: int) -> float:
    """Seconds to publish ``total`` messages, each waiting for its own confirm."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    start = time.perf_counter()
    for _ in range(total):
        channel.basic_publish("", queue, BODY, PERSISTENT)  # raises NackError on a nack
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def async_windowed(url: str, queue: str, total: int, window: int) -> float:
    """Seconds to publish ``total`` messages in windows of ``window``, all confirmed."""
    state = {"sent": 0, "start": 0.0, "end": 0.0, "nacked": 0}
    unconfirmed: set[int] = set()
    channel_box: list[pika.channel.Channel] = []

    def publish_window() -> None:
        channel = channel_box[0]
        for _ in range(min(window, total - state["sent"])):
            channel.basic_publish("", queue, BODY, PERSISTENT)
            state["sent"] += 1
            unconfirmed.add(state["sent"])  # delivery tags count from 1 on a fresh channel

    def on_confirm(frame: pika.frame.Method) -> None:
        method = frame.method
        if isinstance(method, Basic.Nack):
            state["nacked"] += 1
        tag = method.delivery_tag
        if method.multiple:
            unconfirmed.difference_update([t for t in unconfirmed if t <= tag])
        else:
            unconfirmed.discard(tag)
        if not unconfirmed:
            if state["sent"] < total:
                publish_window()
            else:
                state["end"] = time.perf_counter()
                connection.close()

    def on_confirm_mode(_frame: pika.frame.Method) -> None:
        state["start"] = time.perf_counter()
        publish_window()

    def on_channel(channel: pika.channel.Channel) -> None:
        channel_box.append(channel)
        channel.confirm_delivery(on_confirm, callback=on_confirm_mode)

    errors: list[BaseException] = []

    def on_open_error(c: pika.SelectConnection, exc: BaseException) -> None:
        errors.append(exc)
        c.ioloop.stop()

    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_open_error_callback=on_open_error,
        on_close_callback=lambda c, _reason: c.ioloop.stop())
    connection.ioloop.start()
    if errors or state["nacked"] or not state["end"]:
        raise RuntimeError(f"async publishing failed: {state} {errors}")
    return state["end"] - state["start"]


def count_and_purge(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    count = channel.queue_declare(queue, durable=True, passive=True).method.message_count
    channel.queue_purge(queue)
    connection.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="per round")
    parser.add_argument("--rounds", type=int, default=5, help="the median is kept")
    parser.add_argument("--window", type=int, default=100, help="messages per batch")
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    n = args.messages
    cases = {
        "blocking, one at a time": lambda url, q: blocking_one_at_a_time(url, q, n),
        "async, window 1": lambda url, q: async_windowed(url, q, n, 1),
        f"async, window {args.window}": lambda url, q: async_windowed(url, q, n, args.window),
    }
    rates: dict[str, list[float]] = {name: [] for name in cases}
    lost = 0
    with own_brokers() as endpoints:
        url = endpoints.amqp_url
        queue = f"bench.confirms.{uuid.uuid4().hex[:8]}"
        setup = pika.BlockingConnection(pika.URLParameters(url))
        setup.channel().queue_declare(queue, durable=True)
        setup.close()
        for _ in range(args.rounds):
            for name, run in cases.items():
                elapsed = run(url, queue)
                rates[name].append(n / elapsed)
                lost += n - count_and_purge(url, queue)
    rate = {name: median(values) for name, values in rates.items()}
    base, batched = rate["blocking, one at a time"], rate[f"async, window {args.window}"]
    ratio = batched / base
    verdict = "ok" if ratio >= 3 and lost == 0 else "MISSED"
    lines = [
        f"{n} persistent 64-byte messages to a durable classic queue per round, median of "
        f"{args.rounds} rounds; every round's queue count checked against the confirms, "
        "then purged",
        "",
        "| case | msg/s | vs blocking one-at-a-time |",
        "|---|---|---|",
        *(f"| {name} | {value:,.0f} | {value / base:.2f}x |" for name, value in rate.items()),
        "",
        f"Batched / one at a time: {ratio:.1f}x (goal >= 3x: {verdict}); "
        f"confirmed but missing from the queue: {lost}.",
    ]
    report("confirms", lines, args.record)


if __name__ == "__main__":
    main()
