"""Publisher model vs raw pika ``basic_publish``: messages per second (goal: >= 0.95x).

Starts its own brokers through mqkit (process backend, temporary state directory). Run::

    .venv/bin/python benchmarks/publish_rate.py [--messages N] [--rounds N] [--record]
"""

from __future__ import annotations

import os
import time
import uuid

import pika

try:  # run as `python -m benchmarks.NAME` or as `python benchmarks/NAME.py`
    from benchmarks._support import arguments, median, own_brokers, report
except ModuleNotFoundError:
    from _support import arguments, median, own_brokers, report  # type: ignore[no-redef]
from mqkit import clients
from mqkit.widgets import PublisherModel

GOAL = 0.95


def raw_rate(channel, queue: str, n: int, properties) -> float:
    body = b"x" * 64
    start = time.perf_counter()
    for _ in range(n):
        channel.basic_publish("", queue, body, properties)
    return n / (time.perf_counter() - start)


def model_rate(model: PublisherModel, queue: str, n: int, persistent: bool) -> float:
    body = b"x" * 64
    headers = {"destination": "Berlin"} if persistent else None
    start = time.perf_counter()
    for _ in range(n):
        model.publish("", queue, body, headers=headers, persistent=persistent)
    return n / (time.perf_counter() - start)


def added_cost(model: PublisherModel, queue: str, n: int = 100_000) -> float:
    """Microseconds the model adds to one publish: pika's channel swapped for a no-op."""

    class NoOpChannel:
        is_open = True

        def basic_publish(self, *args) -> None:
            pass

    hot = model._channel._hot  # what NotebookChannel.basic_publish calls per message
    real, hot.publish = hot.publish, NoOpChannel().basic_publish
    try:
        body = b"x" * 64
        start = time.perf_counter()
        for _ in range(n):
            model.publish("", queue, body)
        with_model = time.perf_counter() - start
        noop = NoOpChannel()
        start = time.perf_counter()
        for _ in range(n):
            noop.basic_publish("", queue, body, None, False)
        bare = time.perf_counter() - start
    finally:
        hot.publish = real
    return (with_model - bare) / n * 1e6


def main() -> None:
    args = arguments(__doc__ or "", messages=5000, rounds=15)
    n, rounds = args.messages, args.rounds
    lines = [f"{n} messages of 64 bytes per round, median of {rounds} rounds "
             "(raw and model take turns going first; the queue is purged between rounds)", "",
             "| case | raw pika msg/s | PublisherModel msg/s | ratio | goal |",
             "|---|---|---|---|---|"]
    with own_brokers() as endpoints:
        raw = clients.amqp_connection(endpoints, name="bench-raw")
        channel = raw.channel()
        queue = f"bench-publish-{uuid.uuid4().hex[:6]}"
        channel.queue_declare(queue, durable=True)
        model = PublisherModel(endpoints)
        for label, persistent in (("plain", False), ("persistent + headers", True)):
            properties = pika.BasicProperties(
                headers={"destination": "Berlin"},
                delivery_mode=pika.DeliveryMode.Persistent) if persistent else None
            raws, models = [], []
            for turn in range(rounds):
                for which in ("raw", "model") if turn % 2 == 0 else ("model", "raw"):
                    if which == "raw":
                        raws.append(raw_rate(channel, queue, n, properties))
                    else:
                        models.append(model_rate(model, queue, n, persistent))
                    channel.queue_purge(queue)
            ratio = median(models) / median(raws)
            lines.append(f"| {label} | {median(raws):,.0f} | {median(models):,.0f} | "
                         f"{ratio:.3f}x | >= {GOAL}x {'ok' if ratio >= GOAL else 'MISSED'} |")
        per_message = 1e6 / median(raws)
        added = added_cost(model, queue)
        lines += ["", f"CPU the model adds per publish (pika swapped for a no-op): {added:.2f} us, "
                      f"against {per_message:.0f} us per raw publish here: a bound of "
                      f"{per_message / (per_message + added):.2f}x when nothing else competes.",
                  "", "Load average (1, 5, 15 min) at the end: "
                      f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores; other "
                      "sessions' test runs share the machine)."]
        model.close()
        channel.queue_delete(queue)
        raw.close()
    report("publish_rate", lines, args.record)


if __name__ == "__main__":
    main()
