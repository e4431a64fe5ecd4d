"""Shared by the benchmark scripts: brokers of their own, and RESULTS.md."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pika

from mqkit.brokers.process import ProcessBackend
from mqkit.config import Settings
from mqkit.endpoints import Endpoints

RESULTS = Path(__file__).with_name("RESULTS.md")


@contextlib.contextmanager
def own_brokers() -> Iterator[Endpoints]:
    """RabbitMQ and Mosquitto started through mqkit in a state directory of their own."""
    with tempfile.TemporaryDirectory(prefix="mqkit-bench-") as state_dir:
        backend = ProcessBackend(Settings.from_env(env={}, state_dir=Path(state_dir)))
        endpoints = backend.start()
        try:
            yield endpoints
        finally:
            backend.stop()


def machine() -> str:
    return (f"{platform.node() or 'host'}: nproc {os.cpu_count()}, "
            f"Python {sys.version.split()[0]}, pika {pika.__version__}, {platform.machine()}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def arguments(doc: str, messages: int, rounds: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--messages", type=int, default=messages, help="per round")
    parser.add_argument("--rounds", type=int, default=rounds, help="the median is kept")
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    return parser.parse_args()


def report(title: str, lines: list[str], is_recorded: bool) -> None:
    """Print the figures; with ``--record`` append them to RESULTS.md under a dated heading."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    block = [f"## {title} — {stamp} — {machine()}", "", *lines, ""]
    print("\n".join(block))
    if is_recorded:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("\n" + "\n".join(block))
