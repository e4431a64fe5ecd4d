"""What the classroom tests share: the `mqkit` command, a student's card, a full clean-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mqkit.classroom import ClassBroker, Classroom
from mqkit.classroom.cards import card_path, read_card
from mqkit.classroom.record import load_record


def mqkit(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """The `mqkit` command as an instructor runs it: a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")} | variables
    return subprocess.run([sys.executable, "-m", "mqkit", *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def mosquitto_pid(classroom: Classroom, student_id: str) -> int:
    """The pid of the student's Mosquitto, from its state record."""
    state = classroom.folder / "mosquitto" / student_id / "process" / "state.json"
    return int(json.loads(state.read_text())["pids"]["mosquitto"])


def card_of(classroom: Classroom, student_id: str) -> dict[str, str]:
    """The variables of the student's card."""
    record = classroom.record()
    student = record.find(student_id)
    assert student is not None
    return read_card(card_path(classroom.folder, student))


def remove_all(classroom: Classroom, broker: ClassBroker, prefix: str) -> None:
    """Remove every student and check that nothing of the classroom is left."""
    record = load_record(classroom.folder)
    pids = []
    if record is not None and record.students:
        pids = [mosquitto_pid(classroom, s) for s in record.students
                if (classroom.folder / "mosquitto" / s / "process" / "state.json").exists()]
        classroom.remove(list(record.students), broker)
    admin = broker.admin
    assert not [v["name"] for v in admin.vhosts()
                if v["name"].startswith((prefix, prefix.rstrip("-") + ":"))]
    assert not [u["name"] for u in admin.users() if u["name"].startswith(prefix)]
    assert not [pid for pid in pids if pid_alive(pid)]
