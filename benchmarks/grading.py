"""Grading benchmark: 30 submissions of one lab, graded with 1 worker and with 2 workers.

Each submission is the lab's solution notebook under another student's name, so every run
does the full work: a vhost, user and namespace of its own, a fresh kernel, the notebook,
the checks, the cleanup. Throughput is submissions per minute; goal (issue 7): 2 workers
give at least 1.6x the throughput of 1 worker. Run:
    .venv/bin/python benchmarks/grading.py [--submissions 30] [--lab 02] [--record]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._support import median, own_brokers, report
from mqkit.grading.grader import grade

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--lab", default="02")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds, alternating the worker counts; the median is kept")
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    solution = next((ROOT / "labs" / "solutions").glob(f"{args.lab}-*.ipynb"))
    lines = [f"lab {args.lab} ({solution.name}), {args.submissions} submissions, "
             "process backend, cell timeout 60 s", "",
             "| workers | seconds, median (runs) | submissions/min | speed-up | all full marks |",
             "|---|---|---|---|---|"]
    with own_brokers() as brokers, tempfile.TemporaryDirectory() as folder:
        paths = []
        for number in range(args.submissions):
            path = Path(folder) / f"student{number:02d}-{args.lab}.ipynb"
            shutil.copy(solution, path)
            paths.append(path)
        grade(args.lab, paths[:1], broker=brokers)  # warm-up: imports, first kernel start
        seconds: dict[int, list[float]] = {w: [] for w in args.workers}
        loads = []
        for _ in range(args.rounds):
            for workers in args.workers:  # alternating, so drifting machine load hits both
                loads.append(os.getloadavg()[0])
                start = time.monotonic()
                gradebook = grade(args.lab, paths, broker=brokers, workers=workers)
                seconds[workers].append(time.monotonic() - start)
                if not all(p == m for p, m in gradebook.totals().values()):
                    raise SystemExit(f"not all full marks with {workers} workers")
                print(f"{workers} workers: {seconds[workers][-1]:.1f} s", flush=True)
        baseline = len(paths) / median(seconds[args.workers[0]]) * 60
        for workers in args.workers:
            rate = len(paths) / median(seconds[workers]) * 60
            runs = ", ".join(f"{value:.1f}" for value in seconds[workers])
            lines.append(f"| {workers} | {median(seconds[workers]):.1f} ({runs}) | {rate:.1f} | "
                         f"{rate / baseline:.2f}x | yes |")
        lines += ["", f"1-minute load average before each run: "
                      f"{', '.join(f'{value:.1f}' for value in loads)} "
                      "(other work on the machine competes for its cores)."]
    report("Grading throughput (`benchmarks/grading.py`)", lines, args.record)


if __name__ == "__main__":
    main()
