"""Fixtures of the grading tests: `mqkit grade`'s totals of the nbgrader and Otter submissions."""

from __future__ import annotations

import functools
from collections.abc import Callable

import nbformat
import pytest

from mqkit.grading.grader import grade
from tests.grading.tool_submissions import EXTRA, STUDENTS, mqkit_submissions


@pytest.fixture(scope="session")
def mqkit_totals(brokers, tmp_path_factory) -> Callable[[str], dict[str, tuple[int, int]]]:
    """``(lab) -> {student: (points, max points)}`` of ``mqkit grade``, once a lab a session.

    The nbgrader and Otter tests compare their tool's totals with these.
    """

    from tests.grading.test_grader import SANDBOX

    @functools.cache
    def totals(number: str) -> dict[str, tuple[int, int]]:
        inbox = tmp_path_factory.mktemp(f"mqkit-grade-{number}")
        for student, notebook in mqkit_submissions(number).items():
            nbformat.write(notebook, inbox / f"{student}.ipynb")
        book = grade(number, sorted(inbox.glob("*.ipynb")), extra_checks=EXTRA,
                     broker=brokers, sandbox=SANDBOX, timeout=60, workers=2)
        totals = book.totals()
        assert sorted(totals) == list(STUDENTS)
        return totals

    return totals
