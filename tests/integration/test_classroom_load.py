"""30 simulated students at a human pace on one broker: nothing lost, nothing crosses over.

The figures for 10, 30 and 100 students (single node and cluster) are recorded by
``benchmarks/classroom_load.py``; here the class is checked for correctness only.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from mqkit.classroom import ClassBroker, Classroom, parse_roster
from mqkit.classroom.load import StudentResult, _student, run_load
from tests.integration.classroom_support import mqkit, remove_all

pytestmark = pytest.mark.integration

STUDENTS = 30


@pytest.fixture(scope="module")
def big_room(brokers, tmp_path_factory):
    broker = ClassBroker.from_endpoints(brokers)
    prefix = f"l{uuid.uuid4().hex[:6]}-"
    roster = "id,name\n" + "".join(f"s{n:03d},Student {n}\n" for n in range(STUDENTS))
    classroom = Classroom(tmp_path_factory.mktemp("load") / "room")
    classroom.create(parse_roster(roster), broker, prefix=prefix, workers=6)
    yield classroom
    remove_all(classroom, broker, prefix)


def test_thirty_students_lose_nothing_and_never_see_each_other(big_room):
    report = run_load(big_room.record(), seconds=10, processes=3, rate=1.0)
    assert report.errors == {}
    assert report.students == STUDENTS
    assert report.confirmed >= STUDENTS * 8  # about one a second each
    assert report.lost == 0
    assert report.cross == 0
    assert report.duplicates == 0
    assert report.received == report.confirmed
    assert 0 < report.p50_ms <= report.p99_ms


def test_two_students_on_one_vhost_are_counted_as_crossing(big_room):
    """The counter can fail: two simulated students given the same card share its queues.

    RabbitMQ hands a queue's messages to its consumers in turn; two students publishing at
    the same pace can line up so that each consumer still gets only its own student's
    messages (seen here), so they publish at different paces.
    """
    url = big_room.record().urls(big_room.record().students["s000"])["MQKIT_AMQP_URL"]
    results: dict[str, StudentResult] = {}

    def run(student: str, rate: float) -> None:
        results[student] = _student(student, url, 4, rate)

    threads = [threading.Thread(target=run, args=("x", 5.0)),
               threading.Thread(target=run, args=("y", 3.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["x", "y"]
    assert all(not r.error for r in results.values()), results
    assert sum(r.cross for r in results.values()) > 0


def test_the_command_reports_a_short_rehearsal(big_room):
    done = mqkit("classroom", "load", str(big_room.folder), "--seconds", "3", "--students",
                 "4", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["students"] == 4
    assert report["confirmed"] >= 8
    assert (report["lost"], report["cross"], report["errors"]) == (0, 0, {})
