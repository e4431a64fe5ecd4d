"""Grading benchmark: 30 submissions of one lab, graded with 1 worker and with 2 workers.

Each submission is the lab's solution notebook under another student's name, so every run
does the full work: a vhost, user and namespace of its own, a fresh kernel, the notebook,
the checks, the cleanup. Throughput is submissions per minute; goal (issue 7): 2 workers
give at least 1.6x the throughput of 1 worker, in every sandbox (issue 16). With several
``--sandbox`` values, each sandbox's overhead per submission is reported against the first.
Run:
    .venv/bin/python benchmarks/grading.py [--submissions 30] [--lab 02]
        [--sandbox none user docker] [--record]
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
    parser.add_argument("--sandbox", nargs="+", default=None,
                        help="sandboxes to measure (the first is the baseline; default: none "
                             "and every sandbox that runs here)")
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    if args.sandbox is None:
        from mqkit.grading.sandbox import sandbox_classes

        classes = sandbox_classes()
        args.sandbox = ["none", *(name for name in ("user", "docker")
                                  if classes[name].unavailable_reason() is None)]
    solution = next((ROOT / "labs" / "solutions").glob(f"{args.lab}-*.ipynb"))
    lines = [f"lab {args.lab} ({solution.name}), {args.submissions} submissions, "
             "process backend, cell timeout 60 s", "",
             "| sandbox | workers | seconds, median (runs) | submissions/min | speed-up | "
             "all full marks |",
             "|---|---|---|---|---|---|"]
    with own_brokers() as brokers, tempfile.TemporaryDirectory() as folder:
        paths = []
        for number in range(args.submissions):
            path = Path(folder) / f"student{number:02d}-{args.lab}.ipynb"
            shutil.copy(solution, path)
            paths.append(path)
        # Warm-up: imports, first kernel start (the sandbox users and the docker sandbox's
        # kernel image, made once).
        for sandbox in args.sandbox:
            grade(args.lab, paths[:1], broker=brokers, sandbox=sandbox)
        runs_of = [(sandbox, workers) for sandbox in args.sandbox for workers in args.workers]
        seconds: dict[tuple[str, int], list[float]] = {key: [] for key in runs_of}
        loads = []
        for _ in range(args.rounds):
            for sandbox, workers in runs_of:  # interleaved: drifting load hits every kind
                loads.append(os.getloadavg()[0])
                start = time.monotonic()
                gradebook = grade(args.lab, paths, broker=brokers, workers=workers,
                                  sandbox=sandbox)
                seconds[(sandbox, workers)].append(time.monotonic() - start)
                if not all(p == m for p, m in gradebook.totals().values()):
                    raise SystemExit(f"not all full marks with {workers} workers, {sandbox}")
                print(f"{sandbox}, {workers} workers: {seconds[(sandbox, workers)][-1]:.1f} s",
                      flush=True)
        for sandbox in args.sandbox:
            baseline = len(paths) / median(seconds[(sandbox, args.workers[0])]) * 60
            for workers in args.workers:
                taken = seconds[(sandbox, workers)]
                rate = len(paths) / median(taken) * 60
                runs = ", ".join(f"{value:.1f}" for value in taken)
                lines.append(f"| {sandbox} | {workers} | {median(taken):.1f} ({runs}) | "
                             f"{rate:.1f} | {rate / baseline:.2f}x | yes |")
        first = args.sandbox[0]
        for sandbox in args.sandbox[1:]:
            extra = ((median(seconds[(sandbox, args.workers[0])])
                      - median(seconds[(first, args.workers[0])])) / len(paths))
            lines.append("")
            lines.append(f"Overhead of the {sandbox} sandbox against {first}, "
                         f"{args.workers[0]} worker: {extra:+.2f} s per submission.")
        lines += ["", f"1-minute load average before each run: "
                      f"{', '.join(f'{value:.1f}' for value in loads)} "
                      "(other work on the machine competes for its cores)."]
    report("Grading throughput (`benchmarks/grading.py`)", lines, args.record)


if __name__ == "__main__":
    main()
