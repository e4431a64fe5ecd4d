"""Fixtures of the grading tests: `mqkit grade`'s totals of the nbgrader and Otter submissions,
and what the hostile submissions of the sandbox tests must not reach."""

from __future__ import annotations

import concurrent.futures
import socket
import uuid
from collections.abc import Callable, Iterator

import nbformat
import pytest

from mqkit.admin import Admin
from tests.grading.tool_submissions import STUDENTS


class ReferenceTotals:
    """``mqkit grade``'s totals of the tool tests' submissions, graded once a lab a session.

    :meth:`start` begins grading a lab in a background thread, one notebook at a time, so a
    tool test can grade its own submissions meanwhile (both mostly wait on brokers and
    timeouts); calling the object waits for the lab's totals.
    """

    def __init__(self, grade_lab: Callable[[str], dict[str, tuple[int, int]]]) -> None:
        self._grade_lab = grade_lab
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mqkit-grade")
        self._labs: dict[str, concurrent.futures.Future[dict[str, tuple[int, int]]]] = {}

    def start(self, number: str) -> None:
        """Begin grading lab ``number``'s submissions, unless that has begun."""
        if number not in self._labs:
            self._labs[number] = self._pool.submit(self._grade_lab, number)

    def __call__(self, number: str) -> dict[str, tuple[int, int]]:
        """``{student: (points, max points)}`` of lab ``number`` (graded now if not begun)."""
        self.start(number)
        return self._labs[number].result()

    def close(self) -> None:
        """Wait for a grading under way (the brokers outlive it); drop those not begun."""
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def mqkit_totals(brokers, tmp_path_factory) -> Iterator[ReferenceTotals]:
    """``mqkit grade``'s totals of the submissions the nbgrader and Otter tests grade.

    Built from mqkit's student notebook (tool_submissions.py); the tool tests compare their
    tool's totals with these.
    """
    from mqkit.grading.grader import grade
    from tests.grading.test_grader import SANDBOX
    from tests.grading.tool_submissions import EXTRA, mqkit_submissions

    def grade_lab(number: str) -> dict[str, tuple[int, int]]:
        inbox = tmp_path_factory.mktemp(f"mqkit-grade-{number}")
        for student, notebook in mqkit_submissions(number).items():
            nbformat.write(notebook, inbox / f"{student}.ipynb")
        book = grade(number, sorted(inbox.glob("*.ipynb")), extra_checks=EXTRA,
                     broker=brokers, sandbox=SANDBOX, timeout=60, workers=1)
        totals = book.totals()
        assert sorted(totals) == list(STUDENTS)
        return totals

    totals = ReferenceTotals(grade_lab)
    yield totals
    totals.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    """The port of a loopback service of the machine's own that no submission may reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def canary_vhost(brokers) -> Iterator[str]:
    """A vhost of the instructor's that a hostile submission tries to delete."""
    name = f"canary-{uuid.uuid4().hex[:8]}"
    admin = Admin(brokers)
    admin.create_vhost(name)
    yield name
    admin.delete_vhost(name)
