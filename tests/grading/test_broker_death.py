"""The grading RabbitMQ dies while a submission runs: the grader restarts it and grades again.

A sandboxed submission cannot kill the broker, so the test does: a thread watches the
management API and, as soon as *bob*'s notebook has declared its queue, sends the RabbitMQ
process SIGKILL (on the Docker line: ``docker kill`` of its container, which the grader
starts again). Bob's notebook then holds a connection and sleeps a few seconds, so the
kill lands in the middle of his run. Every submission is honest and scores full marks
when graded alone.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mqkit.admin import Admin
from mqkit.exceptions import BrokerNotRunning
from mqkit.grading.broker_watch import BrokerWatch
from mqkit.grading.grader import grade, lab_checks, summary_lines
from tests.grading import submissions
from tests.lines import backend_params, make_line_backend

pytestmark = pytest.mark.integration

#: The queue every notebook here declares (lab 01's).
QUEUE = "lab01.hello"
#: Bob holds a connection open and sleeps, long enough for the kill to land in his run.
HOLD = """\
import time
held = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
time.sleep(4)
"""


@pytest.fixture
def own_brokers(broker_factory):
    """Brokers of this test's own (the session's shared ones must not be killed)."""
    backend = broker_factory("process")
    yield backend
    backend.stop()


@pytest.fixture(params=backend_params("full"))
def killable_brokers(request, broker_factory):
    """Brokers of this test's own on the process backend and on the newest Docker line."""
    backend = make_line_backend(broker_factory, request.param)
    yield backend
    backend.stop()


def rabbitmq_identity(backend) -> str:
    """What changes when RabbitMQ starts again: its pid, or its container's start time."""
    if backend.name == "process":
        return str(backend.store.load().pids["rabbitmq"])
    container = backend.client().containers.get(backend.container_name("rabbitmq"))
    return f"{container.id}@{container.attrs['State']['StartedAt']}"


def kill_rabbitmq(backend) -> str:
    """SIGKILL RabbitMQ: its process, or its container (``docker kill``); its identity."""
    identity = rabbitmq_identity(backend)
    if backend.name == "process":
        os.kill(int(identity), signal.SIGKILL)
    else:
        backend.client().containers.get(backend.container_name("rabbitmq")).kill()
    return identity


@dataclass
class Killer:
    """Kills RabbitMQ once, when ``student``'s notebook has declared its queue."""

    backend: object
    student: str
    stop: threading.Event = field(default_factory=threading.Event)
    killed: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> Killer:
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        # Queues are listed from RabbitMQ's metadata store as soon as they exist; the list of
        # connections lags behind by up to the statistics interval (5 s).
        admin = Admin(self.backend.running())
        prefix = f"grade-{self.student}-"
        while not self.stop.wait(0.1):
            try:
                vhosts = [v["name"] for v in admin.vhosts() if v["name"].startswith(prefix)]
                ready = any(QUEUE in {q["name"] for q in admin.queues(v)} for v in vhosts)
            except Exception:  # the broker may be busy, the vhost just gone: look again
                continue
            if ready:
                self.killed.append(kill_rabbitmq(self.backend))
                return


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def descendants() -> list[tuple[int, str]]:
    """``(pid, command line)`` of every live process this test process started, at any depth."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] in ("Z", "X"):
                continue
            parents[int(entry.name)] = int(stat[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(
                b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    found = []
    for pid in parents:
        ancestor, seen = parents.get(pid), {pid}
        while ancestor and ancestor != os.getpid() and ancestor not in seen:
            seen.add(ancestor)
            ancestor = parents.get(ancestor)
        if ancestor == os.getpid():
            found.append((pid, commands[pid]))
    return found


def test_a_killed_broker_is_restarted_and_the_affected_submissions_graded_again(
        killable_brokers, tmp_path, request):
    own_brokers = killable_brokers
    began = time.monotonic()
    endpoints = own_brokers.running()
    first = rabbitmq_identity(own_brokers)
    notebooks = {
        "alice": submissions.lab_notebook("01", solution=True),
        "bob": submissions.notebook(submissions.WORK, HOLD),
        "carol": submissions.notebook(submissions.WORK),
    }
    paths = submissions.write(tmp_path / "in", "01", notebooks)
    killer = Killer(own_brokers, "bob").start()
    try:
        gradebook = grade("01", paths, out=tmp_path / "grades.csv",
                          feedback_dir=tmp_path / "feedback", broker=own_brokers, workers=2,
                          timeout=30, sandbox="none")
    finally:
        killer.stop.set()
        killer.thread.join(10)
    assert killer.killed == [first], "the broker was never killed during bob's run"

    # Every honest submission scores what it scores alone: full marks, check by check.
    checks, _ = lab_checks("01")
    full = {check.id: check.points for check in checks}
    items = {item.submission.student: item for item in gradebook.submissions}
    assert set(items) == set(notebooks)
    for student, item in items.items():
        assert {r.check_id: r.points for r in item.results} == full, (
            student, item.run.reason, [r.line() for r in item.results])
        assert item.run.outcome == "completed", (student, item.run.reason)

    # The gradebook says so: one incident, naming exactly the submissions graded again.
    (incident,) = gradebook.incidents
    assert incident.brokers == ("RabbitMQ",)
    assert incident.restart_seconds is not None
    regraded = {student for student, item in items.items() if item.regraded}
    assert "bob" in regraded
    assert set(incident.regraded) == regraded
    lines = summary_lines(gradebook)
    (said,) = [line for line in lines if "died during grading" in line]
    match = re.fullmatch(r"RabbitMQ died during grading \(between \d\d:\d\d:\d\d and "
                         r"\d\d:\d\d:\d\d UTC, noticed after \w+'s run\); restarted in "
                         r"[\d.]+ s; re-graded: (.+)", said)
    assert match, said
    assert set(match.group(1).split(", ")) == regraded
    rows = list(csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text())))
    assert list(rows[0]) == ["student", "lab", "check", "points", "max_points", "status",
                             "message", "sandbox"]
    totals = {row["student"]: row for row in rows if row["check"] == "TOTAL"}
    for student in notebooks:
        again = totals[student]["message"] == (
            "graded again: RabbitMQ died during its first run and was restarted")
        assert again == (student in regraded), totals[student]
    assert "graded again from the start" in (tmp_path / "feedback" / "bob.md").read_text()

    # One RabbitMQ runs, the restarted one, with none of the run's vhosts left (the killed
    # broker had kept bob's first one).
    again = rabbitmq_identity(own_brokers)
    assert again != first
    assert [s.is_running for s in own_brokers.status()] == [True, True]
    assert own_brokers.running().amqp_url == endpoints.amqp_url  # same ports and users
    assert not [v["name"] for v in Admin(endpoints).vhosts() if v["name"].startswith("grade-")]
    # No kernel or Mosquitto of the run is left, and once the brokers stop, nothing of them.
    assert [cmd for _pid, cmd in descendants() if "mqkit-grade" in cmd
            or "ipykernel" in cmd] == []
    if own_brokers.name == "process":
        assert not alive(int(first))
        assert alive(int(again))
        assert [name for name in own_brokers.orphans() if name == "beam.smp"] == ["beam.smp"]
        own_brokers.stop()
        assert own_brokers.orphans() == []
        assert not alive(int(again))
    # record_property's own words, without its warning about the xunit2 schema
    request.node.user_properties += [("seconds", round(time.monotonic() - began, 1)),
                                     ("restart_seconds", round(incident.restart_seconds, 1)),
                                     ("regraded", ",".join(sorted(regraded)))]


def test_a_restart_by_someone_else_is_noticed(killable_brokers):
    """`mqkit restart` (or `docker restart`) between two checks: no death for the grader to
    mend, but a new epoch, so the submissions graded across it are graded again."""
    watch = BrokerWatch(killable_brokers.running(), killable_brokers, ("rabbitmq", "mosquitto"))
    assert watch.check() == 0
    assert watch.check() == 0  # nothing happened: the same broker processes
    killable_brokers.restart()
    assert watch.check(after="bob") == 1
    (incident,) = watch.incidents
    assert set(incident.brokers) == {"RabbitMQ", "Mosquitto"}
    assert (incident.noticed_after, incident.restart_seconds) == ("bob", None)
    assert "restarted by something else" in incident.line()
    assert watch.check() == 1


def test_a_broker_the_grader_cannot_restart_ends_the_run_with_a_clear_error(own_brokers,
                                                                             tmp_path):
    # Endpoints alone, of brokers that no backend of this machine's settings runs: to the
    # grader an external broker, which mqkit never starts.
    endpoints = own_brokers.running()
    paths = submissions.write(tmp_path / "in", "01", {
        "bob": submissions.notebook(submissions.WORK, HOLD),
        "carol": submissions.notebook(submissions.WORK)})
    killer = Killer(own_brokers, "bob").start()
    try:
        with pytest.raises(BrokerNotRunning) as raised:
            grade("01", paths, out=tmp_path / "grades.csv", broker=endpoints, workers=1,
                  timeout=30, sandbox="none")
    finally:
        killer.stop.set()
        killer.thread.join(10)
    assert killer.killed, "the broker was never killed during bob's run"
    assert raised.value.message == (
        "RabbitMQ stopped answering during grading (noticed after bob's run); no backend of "
        "mqkit's runs it here, so the grader cannot start it again.")
    assert raised.value.hint.startswith("Have the broker started again, then grade again")
    assert not (tmp_path / "grades.csv").exists()
    assert not alive(int(killer.killed[0]))
    assert [cmd for _pid, cmd in descendants() if "mqkit-grade" in cmd
            or "ipykernel" in cmd] == []
