"""The live progress board against the real brokers: a scripted class, forged verdicts, probes.

A classroom of four students on the session's RabbitMQ: ann finishes lab 02's queue checks,
bo does half, cy runs a self-check that fails, dan does nothing. Their self-checks run as a
kernel would, in a process of its own with the student's card as its environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pika
import pika.exceptions
import pytest

from mqkit import clients
from mqkit.admin import Admin
from mqkit.classroom import ClassBroker, Classroom, parse_roster
from mqkit.classroom.progress import BOARD_QUEUE, ProgressBoard
from mqkit.endpoints import Endpoints
from mqkit.exceptions import AuthenticationError
from mqkit.grading.progress import EXCHANGE
from mqkit.grading.registry import all_checks
from mqkit.urls import parse_url
from mqkit.widgets.class_progress import board_html
from tests.integration.classroom_support import card_of, mqkit, remove_all

pytestmark = pytest.mark.integration

ROSTER = "id,name\nann,Ann Lee\nbo,Bo Chen\ncy,Cy Diaz\ndan,Dan Eze\n"

#: What each student does in their own vhost before their self-checks.
WORK = {
    "ann": "ch.queue_declare('lab02.orders', durable=True)\n"
           "ch.queue_declare('lab02.quorum', durable=True, "
           "arguments={'x-queue-type': 'quorum'})",
    "bo": "ch.queue_declare('lab02.orders', durable=True)",
    "cy": "ch.queue_declare('lab02.orders', durable=False, auto_delete=True)",
}

KERNEL = """
import mqkit, pika
from mqkit.grading import self_check
endpoints = mqkit.start_brokers()
connection = mqkit.amqp_connection(endpoints)
ch = connection.channel()
{work}
for check in ("02.durable-queue", "02.quorum-queue"):
    print(self_check(check, endpoints).line())
"""


@pytest.fixture(scope="module")
def broker(brokers) -> ClassBroker:
    return ClassBroker.from_endpoints(brokers)


@pytest.fixture(scope="module")
def room(broker, tmp_path_factory):
    prefix = f"p{uuid.uuid4().hex[:6]}-"
    classroom = Classroom(tmp_path_factory.mktemp("progress") / "room")
    classroom.create(parse_roster(ROSTER), broker, prefix=prefix)
    yield classroom
    remove_all(classroom, broker, prefix)
    assert not (classroom.folder / "progress.json").exists()


def _kernel(room, student: str, work: str, tmp_path) -> str:
    """Run a student's cells in a process of its own, with their card as its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env |= card_of(room, student) | {"MQKIT_STATE_DIR": str(tmp_path / f"state-{student}")}
    code = KERNEL.format(work=textwrap.dedent(work))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def scripted_class(room, tmp_path_factory):
    """ann, bo and cy ran lab 02's two queue self-checks; dan did nothing."""
    tmp_path = tmp_path_factory.mktemp("kernels")
    return {student: _kernel(room, student, work, tmp_path) for student, work in WORK.items()}


def test_self_checks_fill_the_board(room, broker, scripted_class):
    assert "✔ passed  02.durable-queue" in scripted_class["ann"]
    assert "not yet  02.durable-queue" in scripted_class["cy"]
    board = ProgressBoard(room, broker, "02", probe=False)
    assert board.refresh() == 6  # three students, two verdicts each
    rows = {row.id: row for row in board.grid()}
    assert list(rows) == ["ann", "bo", "cy", "dan"]

    def seen(student: str) -> dict[str, bool]:
        return {check: v.passed for check, v in rows[student].verdicts.items()}

    assert seen("ann") == {"02.durable-queue": True, "02.quorum-queue": True}
    assert seen("bo") == {"02.durable-queue": True, "02.quorum-queue": False}
    assert seen("cy") == {"02.durable-queue": False, "02.quorum-queue": False}
    assert seen("dan") == {}
    assert {v.source for row in rows.values() for v in row.verdicts.values()} == {"self-check"}
    assert rows["ann"].last_activity
    assert rows["cy"].last_activity
    assert rows["dan"].last_activity == ""
    # Every lab 02 check is a column, those never run included; the done count is per lab.
    assert {"02.durable-queue", "02.quorum-queue", "02.survives-restart"} <= set(board.checks)
    assert rows["ann"].passed(board.checks) == 2
    assert rows["bo"].passed(board.checks) == 1
    table = board.table().splitlines()
    columns = table[0].split()
    ann_line = next(line.split() for line in table if line.startswith("ann"))
    # "ann Ann Lee ...": the name takes two words of the line, one column of the header.
    assert ann_line[columns.index("02.durable-queue") + 1] == "✔"
    assert ann_line[columns.index("02.quorum-queue") + 1] == "✔"
    assert ann_line[columns.index("02.survives-restart") + 1] == "·"
    dan_line = next(line for line in table if line.startswith("dan"))
    assert not {"✔", "✘"} & set(dan_line)
    assert dan_line.rstrip().endswith("-")
    html = board_html(board)
    assert html.count("<tr>") == 5
    assert "Ann Lee" in html
    # The verdicts were taken off the queue, and the board keeps them in its file: a second
    # board (or the first, restarted) shows the same grid without them.
    assert broker.admin.take_messages(BOARD_QUEUE, room.record().progress_vhost) == []
    again = ProgressBoard(room, broker, "02", probe=False)
    assert again.refresh() == 0
    assert again.to_csv() == board.to_csv()


def test_the_command_prints_the_grid_and_writes_csv(room, brokers, scripted_class, tmp_path):
    out = tmp_path / "grid.csv"
    done = mqkit("classroom", "progress", str(room.folder), "--lab", "02", "--once",
                 "--no-probe", "--csv", str(out), MQKIT_MANAGEMENT_URL=brokers.management_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "name", "02.durable-queue"]
    assert [line.split()[0] for line in lines[1:5]] == ["ann", "bo", "cy", "dan"]
    rows = [row.split(",") for row in out.read_text().splitlines()]
    durable, quorum = rows[0].index("02.durable-queue"), rows[0].index("02.quorum-queue")
    assert [(row[0], row[durable], row[quorum]) for row in rows[1:]] == [
        ("ann", "passed", "passed"), ("bo", "passed", "failed"), ("cy", "failed", "failed"),
        ("dan", "", "")]


def test_read_only_probes_see_students_who_never_self_checked(room, broker, scripted_class):
    # dan declares a durable queue but runs no self-check: only the probe can see it.
    dan = card_of(room, "dan")
    connection = clients.amqp_connection(dan["MQKIT_AMQP_URL"])
    try:
        connection.channel().queue_declare("lab02.orders", durable=True)
    finally:
        connection.close()
    board = ProgressBoard(room, broker, "02", probe=True)
    board.refresh()
    rows = {row.id: row for row in board.grid()}
    assert rows["dan"].verdicts["02.durable-queue"].passed
    assert rows["dan"].verdicts["02.durable-queue"].source == "probe"
    assert not rows["dan"].verdicts["02.quorum-queue"].passed
    assert rows["dan"].last_activity == ""  # a probe is not the student's activity
    # Checks that are not read-only (they restart brokers, publish, consume) never run.
    assert "02.survives-restart" not in rows["dan"].verdicts


def test_a_verdict_cannot_be_forged_nor_the_board_read(room, broker):
    ann, bo = card_of(room, "ann"), card_of(room, "bo")
    bo_user = parse_url(bo["MQKIT_AMQP_URL"], ("amqp",)).username
    body = json.dumps({"check": "02.quorum-queue", "passed": True,
                       "time": "2030-01-01T00:00:00+00:00"}).encode()
    connection = clients.amqp_connection(ann["MQKIT_CLASSROOM_URL"])
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        # Claiming bo's name: RabbitMQ checks user_id against the connection's user.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_publish(EXCHANGE, "02.quorum-queue", body,
                                  pika.BasicProperties(user_id=bo_user))
        assert refused.value.reply_code == 406
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(EXCHANGE, "02.quorum-queue", body)  # no user_id: nobody's
        for method, arguments in (("queue_declare", ("mine",)), ("basic_get", (BOARD_QUEUE,)),
                                  ("basic_publish", ("amq.topic", "x", b"x"))):
            channel = connection.channel()
            channel.confirm_delivery()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as denied:
                getattr(channel, method)(*arguments)
            assert denied.value.reply_code == 403, method
    finally:
        if connection.is_open:
            connection.close()
    with pytest.raises(AuthenticationError):
        Admin(ann["MQKIT_MANAGEMENT_URL"]).take_messages(BOARD_QUEUE,
                                                         room.record().progress_vhost)
    board = ProgressBoard(room, broker, "02", probe=False)
    before = board.unattributed
    board.refresh()
    assert board.unattributed == before + 1
    bo_row = next(row for row in board.grid() if row.id == "bo")
    forged = bo_row.verdicts.get("02.quorum-queue")
    assert forged is None or not forged.time.startswith("2030")


def test_read_only_checks_take_nothing_and_leave_nothing(brokers, tmp_path):
    """Every read-only AMQP check, run on a namespace whose queues hold messages, changes
    no queue's messages, consumers, bindings or exchanges."""
    admin = Admin(brokers)
    vhost = user = f"ro-{uuid.uuid4().hex[:6]}"
    password = uuid.uuid4().hex
    admin.create_namespace(vhost, user, password)
    try:
        address = brokers.amqp
        url = f"amqp://{user}:{password}@{address.host}:{address.port}/{vhost}"
        management = brokers.management
        endpoints = Endpoints(url, brokers.mqtt_url,
                              f"{management.scheme}://{user}:{password}@{management.host}:"
                              f"{management.port}", "external")
        checks = [c for c in all_checks() if c.read_only and c.lab < "10"]
        queues = sorted({c.params["queue"] for c in checks if "queue" in c.params})
        assert queues, "no read-only check names a queue"
        connection = clients.amqp_connection(url)
        try:
            channel = connection.channel()
            for queue in queues:
                arguments = {"x-queue-type": "quorum"} if "quorum" in queue else None
                channel.queue_declare(queue, durable=True, arguments=arguments)
                for n in range(2):
                    channel.basic_publish("", queue, f"m{n}".encode())
        finally:
            connection.close()

        def snapshot():
            return ({(q["name"], q.get("messages"), q.get("consumers"))
                     for q in admin.queues(vhost)},
                    {e["name"] for e in admin.exchanges(vhost)},
                    {(b["source"], b["destination"], b["routing_key"])
                     for b in admin.bindings(vhost)})

        wait_for_counts = Admin(brokers)
        before = _settled(wait_for_counts, vhost, snapshot, queues)
        for check in checks:
            check.run(endpoints)
        assert _settled(wait_for_counts, vhost, snapshot, queues) == before
    finally:
        admin.delete_namespace(vhost, user)


def _settled(admin, vhost, snapshot, queues, rounds: int = 40):
    """The snapshot once every queue reports 2 messages (statistics lag behind)."""
    for _ in range(rounds):
        counts = {q["name"]: q.get("messages") for q in admin.queues(vhost)}
        if all(counts.get(q) == 2 for q in queues):
            return snapshot()
        time.sleep(0.5)
    return snapshot()


def test_the_widget_redraws_the_board_until_stopped(room, broker, scripted_class):
    from mqkit.widgets import ClassProgress

    widget = ClassProgress(board=ProgressBoard(room, broker, "02", probe=False), interval=1)
    try:
        deadline = time.monotonic() + 20
        while "refreshed" not in widget.grid.value and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "refreshed" in widget.grid.value
        assert widget.grid.value.count("✔") >= 3  # ann twice, bo once
    finally:
        widget.close()
    assert widget.stop_button.disabled
    widget._thread.join(5)
    assert not widget._thread.is_alive()


def test_grade_live_scores_what_the_namespaces_hold(room, scripted_class, tmp_path):
    import csv

    out = tmp_path / "live.csv"
    done = mqkit("grade", "02", "--live", str(room.folder), "--out", str(out),
                 "--feedback", str(tmp_path / "feedback"))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    status = {(r["student"], r["check"]): r["status"] for r in rows}
    assert status[("ann", "02.durable-queue")] == "passed"
    assert status[("ann", "02.quorum-queue")] == "passed"
    assert status[("bo", "02.durable-queue")] == "passed"
    assert status[("bo", "02.quorum-queue")] == "failed"
    assert status[("cy", "02.durable-queue")] == "failed"
    # Nothing of the students' ran: the sandbox column says so for every row.
    assert {r["sandbox"] for r in rows} == {"live"}
    totals = {r["student"]: int(r["points"]) for r in rows if r["check"] == "TOTAL"}
    assert totals["ann"] > totals["bo"] > totals["cy"]
    assert (tmp_path / "feedback" / "ann.md").exists()
    assert mqkit("grade", "02", "--out", str(out)).returncode == 2  # neither notebooks nor --live
