"""A class on one broker: `classroom create` time, latency, loss and memory for N students.

For each N (10, 30, 100 by default) on a RabbitMQ started by mqkit for this run: time
`classroom create` for N students, then simulate them at a human pace (one confirmed message
a second each, consumed with acks, in their own namespaces; `mqkit.classroom.load`) and
record p50/p99 publish-to-consume latency, messages lost and cross-student deliveries (both
must be 0) and the broker's memory per student (node memory during the load minus before
`create`, over N).

Goals: 100 students with zero lost and zero cross-student deliveries; p99 at 100 no more than
5x p99 at 10; `classroom create` for 100 students in under 30 s on one node.

    python -m benchmarks.classroom_load [--students 10,30,100] [--seconds 30] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks._support import own_brokers, report
from mqkit.admin import Admin
from mqkit.brokers.cluster import ClusterBackend
from mqkit.classroom import ClassBroker, Classroom, parse_roster
from mqkit.classroom.load import run_load
from mqkit.config import Settings
from mqkit.endpoints import Endpoints


def _node_memory(admin: Admin) -> int:
    return sum(int(node.get("mem_used", 0)) for node in admin.get("nodes"))


def one_class(broker: ClassBroker, students: int, seconds: float) -> dict[str, float]:
    admin = broker.admin
    with tempfile.TemporaryDirectory(prefix="mqkit-load-") as folder:
        classroom = Classroom(Path(folder) / "course")
        roster = "id,name\n" + "".join(f"s{n:03d},Student {n}\n" for n in range(students))
        before = _node_memory(admin)
        started = time.monotonic()
        classroom.create(parse_roster(roster), broker, prefix=f"b{students}-")
        created = time.monotonic() - started
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:  # the node's memory while the students work
            while not done.wait(2.0):
                samples.append(_node_memory(admin))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            load = run_load(classroom.record(), seconds=seconds, processes=4)
        finally:
            done.set()
            sampler.join(10)
        ids = list(classroom.record().students)
        classroom.remove(ids, broker)
    return {"students": students, "create_s": round(created, 1), "confirmed": load.confirmed,
            "lost": load.lost, "cross": load.cross, "errors": len(load.errors),
            "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
            "mem_per_student_mib": round((max(samples or [before]) - before) / students / 2**20, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", default="10,30,100")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, default=1,
                        help="1: one node; 2-7: a local cluster (mqkit up --nodes N)")
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    rows = []
    with _brokers(args.nodes) as endpoints:
        broker = ClassBroker.from_endpoints(endpoints)
        for students in (int(n) for n in args.students.split(",")):
            rows.append(one_class(broker, students, args.seconds))
    lines = ["| students | create (s) | confirmed | lost | cross | errors | p50 (ms) | "
             "p99 (ms) | memory per student (MiB) |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['students']} | {r['create_s']} | {r['confirmed']} | {r['lost']} | "
              f"{r['cross']} | {r['errors']} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{r['mem_per_student_mib']} |" for r in rows]
    where = "single RabbitMQ node" if args.nodes == 1 else f"{args.nodes}-node RabbitMQ cluster"
    lines += ["", f"{args.seconds:g} s of load per class, one confirmed message a second per "
              f"student, {where} (process backend; cards list every node). Goals: 0 lost, "
              "0 cross, p99 at 100 <= 5x p99 at 10, create for 100 < 30 s (one node)."]
    report(f"Classroom load ({where})", lines, args.record)


@contextlib.contextmanager
def _brokers(nodes: int) -> Iterator[Endpoints]:
    if nodes == 1:
        with own_brokers() as endpoints:
            yield endpoints
        return
    with tempfile.TemporaryDirectory(prefix="mqkit-bench-cluster-") as state_dir:
        backend = ClusterBackend(Settings.from_env(env={}, state_dir=Path(state_dir)), nodes)
        try:
            yield backend.start()
        finally:
            backend.stop()


if __name__ == "__main__":
    main()
