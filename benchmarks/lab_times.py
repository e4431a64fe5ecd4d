"""How long each lab's cells take to run (its solution notebook, Run All, real brokers).

The figures feed the rule behind each lab's stated "Estimated time" (reading at 200 words a
minute + this run time + 5 minutes per exercise; ``mqkit.authoring.estimate_minutes``), which
``tests/labs/test_lab_sources.py`` checks. ``--record`` writes them to lab_times.json.

    python -m benchmarks.lab_times [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mqkit.authoring import estimate_minutes, find_labs, stated_minutes

LABS = Path(__file__).resolve().parents[1] / "labs"
RECORD = Path(__file__).with_name("lab_times.json")


def run_seconds(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--record", action="store_true", help="write lab_times.json")
    args = parser.parse_args()
    figures = {}
    # Brokers of their own, found by the notebooks' start_brokers() through the state
    # directory: labs 02 and 09 restart RabbitMQ, which only brokers mqkit runs allow.
    with tempfile.TemporaryDirectory(prefix="mqkit-lab-times-") as state_dir:
        os.environ.update(MQKIT_BACKEND="process", MQKIT_STATE_DIR=state_dir)
        from mqkit import start_brokers, stop_brokers

        start_brokers()
        try:
            _run_all(figures)
        finally:
            stop_brokers()
    if args.record:
        RECORD.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        print(f"recorded in {RECORD.name}")


def _run_all(figures: dict[str, float]) -> None:
    for lab in find_labs(LABS):
        seconds = round(run_seconds(lab.solution), 1)
        figures[lab.name] = seconds
        source = lab.source.read_text(encoding="utf-8")
        print(f"{lab.name:<28} run {seconds:6.1f} s   rule "
              f"{estimate_minutes(source, seconds):5.1f} min   stated "
              f"{stated_minutes(source)} min", flush=True)


if __name__ == "__main__":
    main()
