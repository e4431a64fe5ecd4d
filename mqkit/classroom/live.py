"""Grade what students left in their namespaces, without running their notebooks again.

After a lab session on the classroom broker, each student's vhost and Mosquitto hold what
their notebook built: queues, bindings, retained messages. ``mqkit grade LAB --live DIR``
runs the lab's checks (and an instructor's extra checks) against every ready student's
namespace, with the student's own card, and writes the same gradebook as ``mqkit grade``.
Nothing of the student's code runs, so no sandbox is needed; the gradebook's sandbox
column says ``live``.

Checks that need the student's running kernel (a worker the check stops, an RPC server
that must answer) see nothing running after the class and say "not yet": grade those labs
from the notebooks instead. Checks that publish probes into the student's queues take them
back out, as they do for a submission.

Example:
    >>> gradebook = grade_live(Classroom("course"), "04")   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mqkit.classroom.cards import card_path
from mqkit.classroom.classroom import Classroom
from mqkit.classroom.record import StudentRecord
from mqkit.endpoints import Endpoints
from mqkit.grading.grader import (
    Gradebook,
    Submission,
    SubmissionResult,
    lab_checks,
    normalize_lab,
)
from mqkit.grading.registry import Check
from mqkit.grading.runner import RunReport

#: The gradebook's sandbox column for a live grade: nothing of the student's ran.
LIVE = "live"


def student_endpoints(classroom: Classroom, student: StudentRecord) -> Endpoints:
    """The student's namespace as their card gives it."""
    urls = classroom.record().urls(student)
    return Endpoints(urls["MQKIT_AMQP_URL"], urls["MQKIT_MQTT_URL"],
                     urls["MQKIT_MANAGEMENT_URL"], "external")


def grade_live(classroom: Classroom, lab: str,
               extra_checks: Iterable[Check] | str | Path | None = None, *,
               students: Iterable[str] | None = None, hint_level: int = 1,
               workers: int = 4) -> Gradebook:
    """Run ``lab``'s checks on each ready student's namespace; return the gradebook.

    Args:
        classroom: the classroom folder's classroom.
        lab: the lab number.
        extra_checks: an instructor's extra checks (a file, or loaded checks): hidden.
        students: only these ids (default: every ready student).
        hint_level: hint levels each "not yet" carries into the feedback.
        workers: students graded at once (each check is a few requests).

    Raises:
        ConfigError: no checks for the lab, or an id that is no student of the classroom.
    """
    from mqkit.exceptions import ConfigError

    lab = normalize_lab(lab)
    checks, hidden = lab_checks(lab, extra_checks)
    record = classroom.record()
    chosen = [s for s in record.students.values() if s.ready]
    if students is not None:
        wanted = {s.lower() for s in students}
        unknown = wanted - {s.id.lower() for s in record.students.values()}
        if unknown:
            raise ConfigError(f"Not students of this classroom: {', '.join(sorted(unknown))}.",
                              hint=f"`mqkit classroom list {classroom.folder}` shows the ids.")
        chosen = [s for s in chosen if s.id.lower() in wanted]

    def one(student: StudentRecord) -> SubmissionResult:
        started = time.monotonic()
        endpoints = student_endpoints(classroom, student)
        results = sorted((check.run(endpoints, hint_level=hint_level) for check in checks),
                         key=lambda r: r.check_id)
        run = RunReport("completed", "graded live: the namespace as the student left it",
                        0, 0, seconds=time.monotonic() - started)
        return SubmissionResult(Submission(student.id, card_path(classroom.folder, student)),
                                lab, results, run, hidden, vhost=student.vhost, sandbox=LIVE)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        graded = list(pool.map(one, sorted(chosen, key=lambda s: s.id.lower())))
    return Gradebook(lab, graded)
