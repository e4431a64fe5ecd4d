"""Hostile submissions graded in the user sandbox beside an honest one, on real brokers.

Each hostile notebook first does lab 01's exercise (so it has a point to keep), then tries
one attack, and raises ``LEAK: …`` if the attack got anywhere: the gradebook's reason shows
it. What the attack could harm is also checked from outside: the canary vhost, the package
files, the processes left, the machine's own ``/tmp``. The whole set runs on the process
backend's brokers and on the newest line's (RabbitMQ 4.3 / Mosquitto 2.1 in Docker): the
caps that stop the flooder, and the memory alarm it must not raise, are the broker's.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import mqkit
from mqkit.admin import Admin
from mqkit.grading.grader import grade
from mqkit.grading.sandbox import UserSandbox, processes_of
from tests.grading import submissions
from tests.lines import line_brokers_fixture

#: The process backend and the newest line (every line under ``make test-matrix``).
brokers = line_brokers_fixture("full")

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(UserSandbox.unavailable_reason() is not None,
                                 reason=f"user sandbox: {UserSandbox.unavailable_reason()}")]

PACKAGE = Path(mqkit.__file__).resolve().parent


def package_hashes() -> dict[str, str]:
    """sha256 of every module of the installed package."""
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(PACKAGE.rglob("*.py"))}


def assert_package_untampered(before: dict[str, str]) -> None:
    """No package file holds the tamper submission's line.

    Files changed during the run are read again rather than failed on sight: in a working
    tree shared with other people's edits a hash can change for honest reasons.
    """
    after = package_hashes()
    assert set(after) >= set(before)
    changed = [path for path, digest in before.items() if after[path] != digest]
    assert not [path for path in changed if submissions.TAMPERED in Path(path).read_text()]


@pytest.fixture(scope="module")
def graded(brokers, canary_vhost, listener, tmp_path_factory):
    from mqkit.config import Settings

    secret = f"SECRET-{uuid.uuid4().hex}"
    marker = f"fill-{uuid.uuid4().hex[:8]}"
    state = str(Settings.from_env().state_dir)
    hostile = {
        "hunter": submissions.hunter([state, str(Path.home()), "/tmp", "/run"], os.getpid(),
                          brokers.amqp.password),
        "tamper": submissions.tamper(PACKAGE / "grading" / "registry.py"),
        "daemon": submissions.DAEMON,
        "forkbomb": submissions.FORK_BOMB,
        "memory": submissions.MEMORY,
        "disk": submissions.disk(marker),
        "ports": submissions.ports([listener, 5432, 6379, 4222]),
        "writer": submissions.writer(secret),
        "snooper": submissions.snoop(secret),
        "flooder": submissions.FLOOD,
    }
    notebooks = {"honest": submissions.lab_notebook("01", solution=True)}
    notebooks |= {name: submissions.notebook(submissions.WORK, attack)
                  for name, attack in hostile.items()}
    folder = tmp_path_factory.mktemp("sandbox")
    paths = submissions.write(folder / "in", "01", notebooks)
    before = package_hashes()
    alarms = watch_memory_alarm(brokers)
    # The run's own sandbox, so the test knows which uids (slots) this run used: a grading
    # run beside it (another test, another person's) claims other slots, whose processes are
    # none of this test's business.
    confiner = UserSandbox(slots=2)
    try:
        gradebook = grade("01", paths, out=folder / "grades.csv", broker=brokers, workers=2,
                          timeout=30, sandbox=confiner)
        # Counted before close() sweeps the slots: what each submission's own sweep missed.
        uids = sorted(uid for uid, _gid in confiner.uids.values())
        left = {uid: processes_of(uid) for uid in uids}
    finally:
        confiner.close()
        alarms.stop.set()
        alarms.thread.join(10)
    return Graded({item.submission.student: item for item in gradebook.submissions}, before,
                  marker, alarms.seen, left)


@dataclass
class Graded:
    """What the module's grading run gave and saw."""

    items: dict
    hashes: dict[str, str]
    marker: str
    alarms: list[bool]
    left: dict[int, list[int]]


class _Watch:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.seen: list[bool] = []
        self.thread: threading.Thread


def watch_memory_alarm(brokers) -> _Watch:
    """Read the node's memory alarm twice a second while the grading runs."""
    watch = _Watch()
    admin = Admin(brokers)

    def poll() -> None:
        while not watch.stop.wait(0.5):
            watch.seen.append(any(node.get("mem_alarm") for node in admin.get("nodes")))

    watch.thread = threading.Thread(target=poll, daemon=True)
    watch.thread.start()
    return watch


def test_every_submission_gets_a_score_and_no_attack_got_anywhere(graded) -> None:
    items = graded.items
    assert set(items) >= {"honest", "hunter", "tamper", "daemon", "forkbomb", "memory",
                          "disk", "ports", "writer", "snooper", "flooder"}
    for name, item in items.items():
        assert item.sandbox == "user"
        assert "LEAK" not in item.run.reason, (name, item.run.reason)
        assert item.points == item.max_points == 1, (name, item.run.reason,
                                                      [r.line() for r in item.results])


def test_a_flood_fills_its_own_caps_and_raises_no_memory_alarm(graded) -> None:
    # The flooder's own check above passed (its queue stayed capped); the node's memory
    # alarm, which would block every publisher on the broker, never went up meanwhile.
    assert graded.alarms, "the memory alarm was never read"
    assert not any(graded.alarms)


def test_the_package_is_unchanged(graded) -> None:
    assert_package_untampered(graded.hashes)


def test_nothing_a_submission_started_is_left(graded) -> None:
    items = graded.items
    # The uids of the run's two slots, looked at right after the run and before the
    # sandbox's final sweep: only each submission's own sweep stood between the daemon and
    # this count.
    assert len(graded.left) == 2
    assert graded.left == {uid: [] for uid in graded.left}
    # The daemon left its session: the sweep found it, and the gradebook says so. (The fork
    # bomb's children die with the kernel's process group.)
    assert items["daemon"].leftovers >= 1
    assert "were still running after the run and were killed" in items["daemon"].run.reason \
        or items["daemon"].leftovers
    assert items["honest"].leftovers == 0


def test_the_canary_vhost_is_intact_and_the_machine_tmp_untouched(graded, brokers, canary_vhost):
    marker = graded.marker
    assert canary_vhost in {vhost["name"] for vhost in Admin(brokers).vhosts()}
    assert not (Path("/tmp") / marker).exists()


def test_an_honest_submission_scores_the_same_unsandboxed(graded, brokers, tmp_path) -> None:
    items = graded.items
    path = submissions.write(tmp_path, "01", {"honest": submissions.lab_notebook("01", True)})
    alone = grade("01", path, broker=brokers, timeout=30, sandbox="none")
    (item,) = alone.submissions
    assert item.sandbox == "none"
    assert [r.points for r in item.results] == [r.points for r in items["honest"].results]
    assert alone.to_csv().splitlines()[1].endswith(",none")
