"""The live progress board: students × a lab's checks, ✔ / ✘, and each student's last activity.

Two feeds fill it:

* **self-checks.** Every card names the classroom's progress vhost (``MQKIT_CLASSROOM_URL``).
  There a student may publish to the exchange ``mqkit.progress`` and do nothing else: no
  declaring, no reading. Each self-check sends its verdict (check id, passed, time); the
  board takes them off the durable queue ``mqkit.progress.board`` through the management
  API and credits the student whose user RabbitMQ validated in the message's ``user_id``.
  This works even when students run their own brokers.
* **read-only checks.** The board runs the lab's checks marked ``read_only`` in the registry
  against each student's namespace: they look without taking or leaving anything.

The latest verdict of a (student, check) wins: a check passed an hour ago and failed since
shows ✘. The board's state is kept in ``DIR/progress.json``, so a board started again (or a
second one) shows what was seen before; verdicts taken off the queue are never lost.

Example:
    >>> board = ProgressBoard(Classroom("course"), connect(), lab="03")   # doctest: +SKIP
    >>> board.refresh()                                                   # doctest: +SKIP
    >>> print(board.table())                                              # doctest: +SKIP
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqkit.admin import Admin
from mqkit.classroom.record import ClassroomRecord, StudentRecord, write_private
from mqkit.endpoints import Endpoints
from mqkit.exceptions import ConfigError
from mqkit.grading.progress import EXCHANGE

if TYPE_CHECKING:
    from mqkit.classroom.broker import ClassBroker
    from mqkit.classroom.classroom import Classroom
    from mqkit.grading.registry import Check

log = logging.getLogger(__name__)

#: The durable queue in the progress vhost that collects every verdict for the board.
BOARD_QUEUE = "mqkit.progress.board"
#: Verdicts kept while no board takes them; beyond, the oldest are dropped (a student who
#: floods the exchange cannot fill the broker's memory).
BOARD_QUEUE_LENGTH = 100_000
#: The board's saved state, in the classroom folder.
STATE_FILE = "progress.json"
#: Verdicts taken per management request.
_BATCH = 500
#: Students probed at once.
_PROBE_WORKERS = 4

#: The permissions of a student on the progress vhost: publish to the progress exchange only.
STUDENT_PERMISSIONS = {"configure": "^$", "write": "^mqkit\\.progress$", "read": "^$"}


def provision_board(admin: Admin, record: ClassroomRecord) -> None:
    """Create (or check) the progress vhost, its exchange and the board's queue.

    The administrator gets every permission there; nothing else is touched. Idempotent.
    """
    vhost = record.progress_vhost
    admin.create_vhost(vhost, description="mqkit classroom: self-check verdicts for the "
                                          "progress board")
    admin.set_permissions(vhost, admin.whoami()["name"])
    admin.declare_exchange(EXCHANGE, vhost, "topic")
    admin.declare_queue(BOARD_QUEUE, vhost, arguments={"x-max-length": BOARD_QUEUE_LENGTH})
    admin.bind_queue(BOARD_QUEUE, EXCHANGE, vhost, "#")


def grant_board(admin: Admin, record: ClassroomRecord, students: list[StudentRecord]) -> int:
    """Let each student publish verdicts (and nothing else) on the progress vhost.

    Only students without the permission yet are asked for, so a ``create`` with nothing to
    add stays one request. Returns how many were granted.
    """
    vhost = record.progress_vhost
    granted = {p["user"] for p in admin.permissions(vhost)}
    missing = [s for s in students if s.user not in granted]
    for student in missing:
        admin.set_permissions(vhost, student.user, **STUDENT_PERMISSIONS)
    return len(missing)


@dataclass
class Verdict:
    """The latest verdict of one check for one student.

    Attributes:
        passed: the check passed.
        time: when (ISO 8601, UTC).
        source: ``self-check`` (the student ran it) or ``probe`` (the board ran it).
    """

    passed: bool
    time: str
    source: str


@dataclass
class ProgressRow:
    """One student's line of the board.

    Attributes:
        id: the student's id.
        name: the student's name.
        verdicts: by check id; a check never seen is absent.
        last_activity: the time of the student's latest self-check ('' when none).
    """

    id: str
    name: str
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    last_activity: str = ""

    def passed(self, checks: list[str]) -> int:
        """How many of ``checks`` the student passes now."""
        return sum(1 for c in checks if c in self.verdicts and self.verdicts[c].passed)


class ProgressBoard:
    """The board of one classroom folder, for one lab or for all.

    Args:
        classroom: the classroom (its record names the students and the progress vhost).
        broker: the classroom's RabbitMQ as an administrator.
        lab: a lab number (``"03"``): columns are its visible checks. ``None``: every check
            seen so far.
        probe: run the lab's read-only checks on each student's namespace at each refresh.

    Raises:
        ConfigError: the folder holds no classroom, or ``lab`` has no checks.
    """

    def __init__(self, classroom: Classroom, broker: ClassBroker, lab: str | None = None, *,
                 probe: bool = True) -> None:
        from mqkit.grading.registry import checks_for_lab

        self.classroom = classroom
        self.broker = broker
        self.record = classroom.record()
        self.lab = None if lab is None else f"{int(lab):02d}"
        self.is_probing = probe
        self._lab_checks: list[Check] = []
        if self.lab is not None:
            self._lab_checks = checks_for_lab(self.lab, include_hidden=False)
            if not self._lab_checks:
                raise ConfigError(f"Lab {self.lab} has no checks.",
                                  hint="Name a lab with self-checks, e.g. --lab 03.")
        self.rows: dict[str, ProgressRow] = {}
        #: Verdicts whose sender is no student of this classroom (or gave no user_id).
        self.unattributed = 0
        self._load()

    # -- feeding --------------------------------------------------------------------------

    def refresh(self) -> int:
        """Take the waiting verdicts, probe (when probing), save; return how many changed."""
        changed = self.drain()
        if self.is_probing:
            changed += self.probe()
        self._save()
        return changed

    def drain(self, limit: int = 10_000) -> int:
        """Take every waiting self-check verdict off the board's queue (at most ``limit``).

        Raises:
            MQKitError: the management API refused or did not answer.
        """
        by_user = {s.user: s for s in self.record.students.values()}
        taken = 0
        while taken < limit:
            messages = self.broker.admin.take_messages(BOARD_QUEUE, self.record.progress_vhost,
                                                       min(_BATCH, limit - taken))
            for message in messages:
                self._apply_message(message, by_user)
            taken += len(messages)
            if len(messages) < _BATCH:
                break
        if taken:
            self._save()
        return taken

    def probe(self) -> int:
        """Run the lab's read-only checks on every ready student's namespace.

        Returns how many verdicts changed. Without a lab, nothing is probed.
        """
        checks = [c for c in self._lab_checks if c.read_only]
        students = [s for s in self.record.students.values() if s.ready]
        if not checks or not students:
            return 0

        def run(student: StudentRecord) -> list[tuple[str, bool]]:
            urls = self.record.urls(student)
            endpoints = Endpoints(urls["MQKIT_AMQP_URL"], urls["MQKIT_MQTT_URL"],
                                  urls["MQKIT_MANAGEMENT_URL"], "external")
            found = []
            for check in checks:
                result = check.run(endpoints)
                if result.status.value in ("passed", "failed"):
                    found.append((check.id, result.is_passed))
            return found

        now = _now()
        changed = 0
        with ThreadPoolExecutor(max_workers=_PROBE_WORKERS) as pool:
            for student, found in zip(students, pool.map(run, students), strict=True):
                row = self._row(student)
                for check_id, passed in found:
                    old = row.verdicts.get(check_id)
                    if old is None or old.passed != passed:
                        changed += 1
                    row.verdicts[check_id] = Verdict(passed, now, "probe")
        return changed

    # -- reading --------------------------------------------------------------------------

    @property
    def checks(self) -> list[str]:
        """The board's columns: the lab's visible checks, or every check id seen."""
        if self.lab is not None:
            return [c.id for c in self._lab_checks]
        return sorted({c for row in self.rows.values() for c in row.verdicts})

    def grid(self) -> list[ProgressRow]:
        """Every student of the classroom, in id order, with their verdicts (blank if none)."""
        return [self.rows.get(s.id) or ProgressRow(s.id, s.name)
                for s in sorted(self.record.students.values(), key=lambda s: s.id.lower())]

    def table(self) -> str:
        """The grid as text: ✔ passed, ✘ not yet, · never checked; the last activity."""
        checks = self.checks
        header = ["id", "name", *checks, "done", "last activity"]
        lines = [header]
        for row in self.grid():
            cells = [_symbol(row.verdicts.get(c)) for c in checks]
            lines.append([row.id, row.name, *cells, f"{row.passed(checks)}/{len(checks)}",
                          _clock(row.last_activity)])
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                .rstrip() for line in lines]
        if self.unattributed:
            text.append(f"({self.unattributed} verdicts from no student of this classroom "
                        "were ignored)")
        return "\n".join(text)

    def to_csv(self) -> str:
        """The grid as CSV: one row per student, a column per check (passed / failed / '')."""
        checks = self.checks
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "name", *checks, "done", "last_activity"])
        for row in self.grid():
            cells = ["" if c not in row.verdicts else
                     ("passed" if row.verdicts[c].passed else "failed") for c in checks]
            writer.writerow([row.id, row.name, *cells, row.passed(checks), row.last_activity])
        return out.getvalue()

    # -- internals ------------------------------------------------------------------------

    def _row(self, student: StudentRecord) -> ProgressRow:
        row = self.rows.get(student.id)
        if row is None:
            row = self.rows[student.id] = ProgressRow(student.id, student.name)
        return row

    def _apply_message(self, message: dict[str, Any], by_user: dict[str, StudentRecord]) -> None:
        properties = message.get("properties") or {}
        student = by_user.get(properties.get("user_id", "")) if isinstance(
            properties, dict) else None
        try:
            body = _payload(message)
            check_id, passed, when = str(body["check"]), bool(body["passed"]), str(body["time"])
        except (ValueError, KeyError, TypeError):
            student = None
        if student is None:
            self.unattributed += 1
            return
        # Verdicts of other labs are kept too: the board of that lab shows them.
        row = self._row(student)
        old = row.verdicts.get(check_id)
        if old is None or old.time <= when:
            row.verdicts[check_id] = Verdict(passed, when, "self-check")
        row.last_activity = max(row.last_activity, when)

    def _path(self) -> Path:
        return self.classroom.folder / STATE_FILE

    def _load(self) -> None:
        try:
            data = json.loads(self._path().read_text())
        except FileNotFoundError:
            return
        except ValueError as exc:
            raise ConfigError(f"{self._path()} is not a readable progress file: {exc}.",
                              hint="Move it aside; the board starts empty and fills again.") \
                from None
        for student_id, saved in data.get("students", {}).items():
            self.rows[student_id] = ProgressRow(
                student_id, saved.get("name", student_id),
                {c: Verdict(**v) for c, v in saved.get("verdicts", {}).items()},
                saved.get("last_activity", ""))
        self.unattributed = int(data.get("unattributed", 0))

    def _save(self) -> None:
        data = {"students": {sid: {"name": row.name, "last_activity": row.last_activity,
                                   "verdicts": {c: vars(v) for c, v in row.verdicts.items()}}
                             for sid, row in self.rows.items()},
                "unattributed": self.unattributed}
        write_private(self._path(), json.dumps(data, indent=1, sort_keys=True) + "\n")


def _payload(message: dict[str, Any]) -> dict[str, Any]:
    payload = message.get("payload", "")
    if message.get("payload_encoding") == "base64":
        payload = base64.b64decode(payload).decode()
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    return body


def _symbol(verdict: Verdict | None) -> str:
    return "·" if verdict is None else ("✔" if verdict.passed else "✘")


def _clock(when: str) -> str:
    """``HH:MM:SS`` (UTC) of an ISO time, or '-'."""
    if not when:
        return "-"
    try:
        return datetime.fromisoformat(when).astimezone(UTC).strftime("%H:%M:%S")
    except ValueError:
        return when


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["BOARD_QUEUE", "ProgressBoard", "ProgressRow", "Verdict", "grant_board",
           "provision_board"]

