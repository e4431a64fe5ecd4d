"""`mqkit grade` against real brokers: exact scores for labs 02 and 03, malicious ones included."""

from __future__ import annotations

import contextlib
import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from mqkit.admin import Admin
from mqkit.grading.grader import Gradebook, collect, grade, student_of
from mqkit.grading.namespace import Namespace
from mqkit.grading.sandbox import UserSandbox
from tests.grading import submissions

pytestmark = pytest.mark.integration

EXTRA = Path(__file__).with_name("extra_checks.py")
# Graded in the user sandbox where it runs (root on Linux, as in CI); elsewhere unsandboxed,
# on purpose, so a developer without root can run these tests too.
SANDBOX = "user" if UserSandbox.unavailable_reason() is None else "none"
CELL_TIMEOUT = 10

# student -> ({check: points}, outcome); max points: lab 02 = 7, lab 03 = 7.
# 02.quorum-cases: only the solution sets up the quorum cases of the restart experiment.
EXPECTED_02 = {
    "broken": ({"02.durable-queue": 1, "02.hidden-orders-once": 1,
                "02.quorum-cases": 0, "02.quorum-queue": 1,
                "02.survives-restart": 2}, "errors"),
    "correct": ({"02.durable-queue": 1, "02.hidden-orders-once": 1,
                 "02.quorum-cases": 2, "02.quorum-queue": 1,
                 "02.survives-restart": 2}, "completed"),
    "crasher": ({"02.durable-queue": 0, "02.hidden-orders-once": 0,
                 "02.quorum-cases": 0, "02.quorum-queue": 1,
                 "02.survives-restart": 0}, "kernel-died"),
    "different": ({"02.durable-queue": 1, "02.hidden-orders-once": 1,
                   "02.quorum-cases": 0, "02.quorum-queue": 1,
                   "02.survives-restart": 2}, "completed"),
    "exiter": ({"02.durable-queue": 1, "02.hidden-orders-once": 1,
                "02.quorum-cases": 0, "02.quorum-queue": 1,
                "02.survives-restart": 2}, "errors"),
    "fake": ({"02.durable-queue": 0, "02.hidden-orders-once": 0,
              "02.quorum-cases": 0, "02.quorum-queue": 0,
              "02.survives-restart": 0}, "completed"),
    "looper": ({"02.durable-queue": 1, "02.hidden-orders-once": 0,
                "02.quorum-cases": 0, "02.quorum-queue": 1,
                "02.survives-restart": 0}, "timed-out"),
    "partial": ({"02.durable-queue": 1, "02.hidden-orders-once": 0,
                 "02.quorum-cases": 0, "02.quorum-queue": 1,
                 "02.survives-restart": 0}, "completed"),
    "shouter": ({"02.durable-queue": 1, "02.hidden-orders-once": 0,
                 "02.quorum-cases": 0, "02.quorum-queue": 1,
                 "02.survives-restart": 2}, "completed"),
    "vandal": ({"02.durable-queue": 1, "02.hidden-orders-once": 1,
                "02.quorum-cases": 0, "02.quorum-queue": 0,
                "02.survives-restart": 2}, "completed"),
    "wrong": ({"02.durable-queue": 0, "02.hidden-orders-once": 1,
               "02.quorum-cases": 0, "02.quorum-queue": 0,
               "02.survives-restart": 0}, "completed"),
}
EXPECTED_03 = {
    # 03.no-loss-on-crash runs right after its cell, while the notebook's worker lives: the
    # solution's worker loses nothing, the untouched student notebook's auto_ack draft does.
    # 03.priority-order: the untouched student notebook's tickets wait in a plain queue.
    "broken": ({"03.all-acked": 0, "03.hidden-tasks-durable": 1,
                "03.no-loss-on-crash": 0, "03.priority-order": 0}, "errors"),
    "correct": ({"03.all-acked": 2, "03.hidden-tasks-durable": 1,
                 "03.no-loss-on-crash": 2, "03.priority-order": 2}, "completed"),
    "different": ({"03.all-acked": 2, "03.hidden-tasks-durable": 1,
                   "03.no-loss-on-crash": 0, "03.priority-order": 0}, "completed"),
    "endless": ({"03.all-acked": 2, "03.hidden-tasks-durable": 1,
                 "03.no-loss-on-crash": 0, "03.priority-order": 0}, "timed-out"),
    "fake": ({"03.all-acked": 0, "03.hidden-tasks-durable": 0,
              "03.no-loss-on-crash": 0, "03.priority-order": 0}, "completed"),
    "partial": ({"03.all-acked": 0, "03.hidden-tasks-durable": 1,
                 "03.no-loss-on-crash": 0, "03.priority-order": 0}, "completed"),
    "wrong": ({"03.all-acked": 0, "03.hidden-tasks-durable": 0,
               "03.no-loss-on-crash": 0, "03.priority-order": 0}, "completed"),
}


@contextlib.contextmanager
def planted_canary(endpoints) -> Iterator[str]:
    """A queue with one message in the instructor's vhost '/', which a submission attacks."""
    name = f"grading.canary.{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url)) as connection:
        channel = connection.channel()
        channel.queue_declare(name, durable=True)
        channel.confirm_delivery()
        channel.basic_publish("", name, b"keep me")
    yield name
    Admin(endpoints).delete_queue(name)


def canary_messages(endpoints, name: str) -> int:
    """How many messages the canary queue holds now (it must exist)."""
    with pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url)) as connection:
        return connection.channel().queue_declare(name, passive=True).method.message_count


@pytest.fixture(scope="module")
def canary(brokers):
    with planted_canary(brokers) as name:
        yield name


@pytest.fixture(scope="module")
def graded_02(brokers, canary, tmp_path_factory) -> tuple[Gradebook, Path]:
    folder = tmp_path_factory.mktemp("lab02")
    paths = submissions.write(folder / "in", "02", submissions.lab02(canary))
    gradebook = grade("02", paths, out=folder / "grades.csv", feedback_dir=folder / "feedback",
                      workers=2, timeout=CELL_TIMEOUT, extra_checks=EXTRA, broker=brokers,
                      sandbox=SANDBOX)
    return gradebook, folder


@pytest.fixture(scope="module")
def graded_03(brokers, tmp_path_factory) -> tuple[Gradebook, Path, list[Path]]:
    folder = tmp_path_factory.mktemp("lab03")
    paths = submissions.write(folder / "in", "03", submissions.lab03())
    gradebook = grade("03", paths, out=folder / "grades.csv", feedback_dir=folder / "feedback",
                      workers=2, timeout=CELL_TIMEOUT, extra_checks=EXTRA, broker=brokers,
                      sandbox=SANDBOX)
    return gradebook, folder, paths


def scores(gradebook: Gradebook) -> dict[str, tuple[dict[str, int], str]]:
    return {item.submission.student: ({r.check_id: r.points for r in item.results},
                                      item.run.outcome)
            for item in gradebook.submissions}


def test_lab02_exact_scores(graded_02):
    gradebook, _ = graded_02
    assert scores(gradebook) == EXPECTED_02
    assert {s: t[1] for s, t in gradebook.totals().items()} == dict.fromkeys(EXPECTED_02, 7)


def test_lab03_exact_scores(graded_03):
    gradebook, _, _ = graded_03
    assert scores(gradebook) == EXPECTED_03
    assert {s: t[1] for s, t in gradebook.totals().items()} == dict.fromkeys(EXPECTED_03, 7)


def test_lab02_quorum_cases_fail_for_what_is_missing(graded_02):
    results = {i.submission.student: {r.check_id: r for r in i.results}
               for i in graded_02[0].submissions}
    # The grader's brokers do not restart: the solution's quorum cases are checked as set up.
    assert results["correct"]["02.quorum-cases"].message == (
        "quorum queue 'lab02.quorum' holds a persistent message, 'lab02.quorum-transient' a "
        "transient one")
    # Exercises 1 and 2 only: the quorum queue exists, its message does not.
    assert results["partial"]["02.quorum-cases"].message == (
        "queue 'lab02.quorum' holds 0 messages, expected at least 1")


def test_lab03_worker_is_killed_while_the_kernel_runs(graded_03):
    # The crash check met each notebook's live worker: the solution's lost nothing, the
    # untouched student notebook's draft lost jobs (not "nothing consumes": it was running).
    results = {i.submission.student: {r.check_id: r for r in i.results}
               for i in graded_03[0].submissions}
    assert results["correct"]["03.no-loss-on-crash"].message.startswith(
        "the worker was killed mid-stream and no job was lost")
    assert results["partial"]["03.no-loss-on-crash"].message.startswith(
        "jobs were lost when the worker was killed mid-stream")
    assert results["different"]["03.no-loss-on-crash"].message == (
        "there is no queue 'lab03.done' for the results")


def test_reasons_name_what_went_wrong(graded_02, graded_03):
    runs = {i.submission.student: i.run for i in graded_02[0].submissions}
    assert runs["looper"].reason.startswith("timed out in cell 3")
    assert runs["crasher"].reason == "the kernel died in cell 2"
    assert runs["broken"].reason == "error in cell 3: ZeroDivisionError: division by zero"
    assert runs["exiter"].reason.startswith("error in cell 2: SystemExit")
    assert runs["shouter"].output_bytes > 4_000_000
    assert 0 < runs["shouter"].output_dropped < runs["shouter"].output_bytes
    assert runs["correct"].reason == ""
    endless = {i.submission.student: i.run for i in graded_03[0].submissions}["endless"]
    assert endless.reason.startswith("timed out in cell 3")


def test_printed_passed_is_not_trusted(graded_02):
    fake = {i.submission.student: i for i in graded_02[0].submissions}["fake"]
    assert fake.points == 0
    assert {r.message for r in fake.results} == {"there is no queue 'lab02.orders'",
                                                 "there is no queue 'lab02.quorum'"}


def test_another_vhost_is_refused_and_untouched(graded_02, brokers, canary):
    # The vandal tried to delete the canary in '/' over AMQP and HTTP: it is still there.
    assert canary_messages(brokers, canary) == 1


def test_scoped_users_are_refused_on_each_others_vhosts(brokers):
    with Namespace.create(brokers, "a", with_mqtt=False) as a, \
            Namespace.create(brokers, "b", with_mqtt=False) as b:
        crossed = pika.URLParameters(a.endpoints.amqp_url.rsplit("/", 1)[0] + "/" + b.vhost)
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
            pika.BlockingConnection(crossed)
        with pytest.raises(Exception, match=r"401|403|refused"):
            Admin(a.endpoints).queues(b.vhost)
        assert [v["name"] for v in Admin(a.endpoints).vhosts()] == [a.vhost]
    names = {v["name"] for v in Admin(brokers).vhosts()}
    users = {u["name"] for u in Admin(brokers).users()}
    assert a.vhost not in names
    assert b.vhost not in names
    assert a.vhost not in users


def test_each_submission_had_its_own_vhost_and_all_were_removed(graded_02, graded_03, brokers):
    vhosts = [i.vhost for g in (graded_02[0], graded_03[0]) for i in g.submissions]
    assert len(set(vhosts)) == len(vhosts) == len(EXPECTED_02) + len(EXPECTED_03)
    left = {v["name"] for v in Admin(brokers).vhosts()} | {u["name"]
                                                           for u in Admin(brokers).users()}
    assert not left & set(vhosts)


def test_csv_rows_and_totals(graded_02):
    _, folder = graded_02
    rows = list(csv.DictReader(io.StringIO((folder / "grades.csv").read_text())))
    assert list(rows[0]) == ["student", "lab", "check", "points", "max_points", "status",
                             "message", "sandbox"]
    assert len(rows) == len(EXPECTED_02) * 6  # five checks and the total
    assert {r["sandbox"] for r in rows} == {SANDBOX}
    total = {r["student"]: r for r in rows if r["check"] == "TOTAL"}
    assert (total["correct"]["points"], total["correct"]["max_points"]) == ("7", "7")
    assert total["looper"]["status"] == "timed-out"
    feedback = (folder / "feedback" / "partial.md").read_text()
    assert "**Score: 2 / 7**" in feedback
    assert "02.hidden-orders-once (hidden)" in feedback
    # The first hint level of the missed check: the concept, not the code.
    assert "which message property is that?" in feedback
    assert "delivery_mode=2" not in feedback


def test_regrading_gives_identical_bytes(graded_03, brokers, tmp_path):
    _, folder, paths = graded_03
    grade("03", paths, out=tmp_path / "again.csv", workers=1, timeout=CELL_TIMEOUT,
          extra_checks=EXTRA, broker=brokers, sandbox=SANDBOX)
    assert (tmp_path / "again.csv").read_bytes() == (folder / "grades.csv").read_bytes()


COUNTING_CHECKS = """\
from pathlib import Path

from mqkit.grading import check
from mqkit.grading.amqp import durable_queue

with Path({runs!r}).open("a") as runs:
    runs.write("executed\\n")

check("02.hidden-counted", "a durable orders queue", "Declare it durable.",
      params={{"queue": "lab02.orders"}})(durable_queue)
"""


def test_the_extra_checks_file_is_executed_once_per_grading_run(brokers, tmp_path):
    runs = tmp_path / "runs.txt"
    extra = tmp_path / "counting_checks.py"
    extra.write_text(COUNTING_CHECKS.format(runs=str(runs)), encoding="utf-8")
    declares = submissions.notebook(submissions.CONNECT,
                                    'channel.queue_declare("lab02.orders", durable=True)')
    paths = submissions.write(tmp_path / "in", "02", {
        "declares": declares, "idle": submissions.notebook("pass")})
    gradebook = grade("02", paths, workers=2, timeout=CELL_TIMEOUT, extra_checks=extra,
                      broker=brokers, sandbox=SANDBOX)
    # Before, it ran once to validate and again for every submission.
    assert runs.read_text() == "executed\n"
    counted = {student: points["02.hidden-counted"]
               for student, (points, _) in scores(gradebook).items()}
    assert counted == {"declares": 1, "idle": 0}


def test_student_identity(tmp_path):
    nb = submissions.notebook("pass")
    for name in ("alice.ipynb", "alice-02.ipynb", "bob_02.ipynb"):
        submissions.nbformat.write(nb, tmp_path / name)
    assert student_of(tmp_path / "alice-02.ipynb", "02") == "alice"
    assert student_of(tmp_path / "bob_02.ipynb", "02") == "bob"
    named = tmp_path / "submission.ipynb"
    submissions.nbformat.write(submissions.notebook("pass", student="carol"), named)
    assert student_of(named) == "carol"
    with pytest.raises(ValueError, match="Two submissions for student 'alice'"):
        collect("02", [tmp_path / "alice.ipynb", tmp_path / "alice-02.ipynb"])
    # One rule for every lab, and case does not tell students apart.
    for name in ("Alice.ipynb", "alice_2.ipynb", "ALICE lab02.ipynb", "alice.lab2.ipynb"):
        assert student_of(tmp_path / name, "02") == "alice", name
    assert student_of(tmp_path / "dan-11.ipynb", "11") == "dan"
    assert student_of(tmp_path / "dan-11.ipynb", "02") == "dan-11"
    submissions.nbformat.write(nb, tmp_path / "Alice.ipynb")
    with pytest.raises(ValueError, match="Two submissions for student 'alice'"):
        collect("02", [tmp_path / "Alice.ipynb", tmp_path / "alice.ipynb"])
