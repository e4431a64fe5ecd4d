"""Instructions per publish (callgrind): raw pika vs NotebookChannel vs the Publisher model.

Wall-clock rates swing by a tenth within an hour on a shared machine; instruction counts do
not. Each case runs in its own Python under ``valgrind --tool=callgrind`` twice, publishing
``messages // 5`` and then ``messages`` 64-byte messages on one connection to a durable
queue; the difference of the two totals over the difference of the counts is the cost of one
publish, with connection set-up, imports and teardown cancelled out. Python's hash seed is
fixed (``PYTHONHASHSEED=0``) so that both runs of a case do the same work apart from the
publishes. Goal (issue 17): NotebookChannel and the model at most 5% above raw pika.

Starts its own brokers through mqkit (process backend, temporary state directory). Run::

    .venv/bin/python benchmarks/publish_instructions.py [--messages N] [--rounds N] [--record]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pika

try:  # run as `python -m benchmarks.NAME` or as `python benchmarks/NAME.py`
    from benchmarks._support import arguments, median, own_brokers, report
except ModuleNotFoundError:
    from _support import arguments, median, own_brokers, report  # type: ignore[no-redef]

CASES = ("raw pika", "NotebookChannel", "PublisherModel")
KINDS = ("plain", "persistent + headers")
GOAL = 1.05


def publish(case: str, kind: str, n: int, url: str, queue: str) -> None:
    """The measured program: connect, publish ``n`` messages, close."""
    from mqkit import clients
    from mqkit.widgets import PublisherModel

    body = b"x" * 64
    persistent = kind != "plain"
    headers = {"destination": "Berlin"} if persistent else None
    properties = pika.BasicProperties(
        headers=headers, delivery_mode=pika.DeliveryMode.Persistent) if persistent else None
    if case == "PublisherModel":
        model = PublisherModel(url, name="bench-model")
        send = model.publish
        for _ in range(n):
            send("", queue, body, headers=headers, persistent=persistent)
        model.close()
        return
    if case == "raw pika":
        connection = clients.amqp_connection(url, name="bench-raw")
    else:
        connection = clients.notebook_connection(url, name="bench-channel")
    channel = connection.channel()
    send = channel.basic_publish
    for _ in range(n):
        send("", queue, body, properties)
    connection.close()


def instructions(case: str, kind: str, n: int, url: str, queue: str) -> int:
    """Instructions that the whole program of :func:`publish` executes (callgrind's total)."""
    with tempfile.TemporaryDirectory(prefix="mqkit-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--worker", case, kind, str(n), url, queue],
            env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True,
            check=False)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or not found:
            raise RuntimeError(f"callgrind run failed ({case}, {kind}, n={n}):\n"
                               f"{done.stderr[-2000:]}")
        return int(found.group(1))


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        case, kind, n, url, queue = sys.argv[2:7]
        publish(case, kind, int(n), url, queue)
        return
    args = arguments(__doc__ or "", messages=2500, rounds=3)
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    high, rounds = args.messages, args.rounds
    low = high // 5
    per_message: dict[tuple[str, str], list[float]] = {}
    with own_brokers() as endpoints:
        admin = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
        channel = admin.channel()
        queue = f"bench-instructions-{uuid.uuid4().hex[:6]}"
        channel.queue_declare(queue, durable=True)
        for turn in range(rounds):
            for kind in KINDS:
                # Rounds interleave the cases, so slow drift on the machine hits all alike.
                for case in CASES if turn % 2 == 0 else CASES[::-1]:
                    counts = []
                    for n in (low, high):
                        counts.append(instructions(case, kind, n, endpoints.amqp_url, queue))
                        channel.queue_purge(queue)
                    cost = (counts[1] - counts[0]) / (high - low)
                    per_message.setdefault((case, kind), []).append(cost)
                    print(f"round {turn + 1}: {case}, {kind}: {cost:,.0f} instructions",
                          file=sys.stderr)
        channel.queue_delete(queue)
        admin.close()
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    lines = [f"Instructions per publish, `{version} --tool=callgrind`, whole client process: "
             f"(total at {high} messages - total at {low}) / {high - low}, median of {rounds} "
             "rounds (cases interleaved), PYTHONHASHSEED=0, 64-byte body, one connection",
             "",
             "| message | raw pika `basic_publish` | NotebookChannel.basic_publish | ratio "
             "| PublisherModel.publish | ratio | goal |",
             "|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        raw, channel_cost, model_cost = (median(per_message[(case, kind)]) for case in CASES)
        ratios = (channel_cost / raw, model_cost / raw)
        verdict = "ok" if max(ratios) <= GOAL else "MISSED"
        lines.append(f"| {kind} | {raw:,.0f} | {channel_cost:,.0f} | {ratios[0]:.3f}x "
                     f"| {model_cost:,.0f} | {ratios[1]:.3f}x | <= {GOAL}x {verdict} |")
    spread = ", ".join(
        f"{case} {kind}: {min(v):,.0f}-{max(v):,.0f}" for (case, kind), v in per_message.items())
    lines += ["", f"Spread over the rounds: {spread}."]
    report("publish_instructions", lines, args.record)


if __name__ == "__main__":
    main()
