"""What an nbgrader course and an Otter assignment take from a lab: exercises, checks, points.

Both exporters start from the two notebooks :mod:`mqkit.authoring` renders from one lab
source, the student and the solution notebook, whose cells correspond one to one. A cell the
solution notebook tags ``solution`` is an *exercise* (the student notebook holds its stub); a
code cell that calls ``self_check("NN.name", ...)`` with a check of the lab is a *self-check*
and becomes a test with that check's points; the lab's checks that no cell self-checks (the
instructor's extra checks, and built-in hidden ones) become hidden tests at the end.

The exporters live here, below :mod:`mqkit.authoring` in the layers, so they receive the
rendered notebooks rather than render them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mqkit.grading.grader import SELF_CHECK_CALL, lab_checks, load_extra_checks
from mqkit.grading.registry import Check

#: The comment a hidden-test cell shows students (its code is kept from them).
HIDDEN_NOTE = "# Hidden tests: when your notebook is graded, more checks run here."


@dataclass(frozen=True)
class LabNotebooks:
    """One lab's two generated notebooks (JSON text, as :func:`render_notebook` writes them).

    Attributes:
        name: ``NN-name``.
        student: the student notebook, without outputs.
        solution: the solution notebook, without outputs.
    """

    name: str
    student: str
    solution: str

    @property
    def number(self) -> str:
        """The lab number, ``"03"``."""
        return self.name[:2]

    @property
    def assignment(self) -> str:
        """The assignment's name in a course: ``lab03``."""
        return f"lab{self.number}"


@dataclass(frozen=True)
class ExtraChecks:
    """An instructor's extra-checks file: its checks and its text (which tests carry)."""

    checks: tuple[Check, ...] = ()
    source: str | None = None

    @classmethod
    def load(cls, path: str | Path | None) -> ExtraChecks:
        """The file's checks and text; no file, no checks.

        Raises:
            ConfigError: the file is missing or does not load.
        """
        if path is None:
            return cls()
        checks = tuple(load_extra_checks(path))
        return cls(checks, Path(path).read_text(encoding="utf-8"))

    def source_for(self, check_id: str) -> str | None:
        """The file's text when it defines ``check_id`` (a fresh process must load it)."""
        return self.source if any(c.id == check_id for c in self.checks) else None


@dataclass
class LabCell:
    """One cell of a lab, classified for an autograder.

    Attributes:
        student: the student notebook's cell.
        solution: the solution notebook's cell (``None`` for a hidden-test cell).
        kind: ``exercise``, ``self-check``, ``hidden`` or ``text`` (everything else).
        checks: for a self-check or hidden cell, the checks it grades.
    """

    student: Any
    solution: Any
    kind: str
    checks: list[Check] = field(default_factory=list)

    @property
    def points(self) -> int:
        """The points of its checks."""
        return sum(c.points for c in self.checks)


def lab_cells(lab: LabNotebooks, extra: ExtraChecks) -> Iterator[LabCell]:
    """The lab's cells in order, then one hidden-test cell per check no cell self-checks.

    A self-check cell grades each of its lab's checks it names, once (the first cell that
    names a check grades it).
    """
    import nbformat

    student = nbformat.reads(lab.student, as_version=4)
    solution = nbformat.reads(lab.solution, as_version=4)
    checks = _checks_of(lab.number, extra.checks)
    by_id = {c.id: c for c in checks}
    graded: set[str] = set()
    for mine, answer in zip(student.cells, solution.cells, strict=True):
        if "solution" in answer.metadata.get("tags", []):
            yield LabCell(mine, answer, "exercise")
            continue
        named = [by_id[i] for i in dict.fromkeys(SELF_CHECK_CALL.findall(mine.source))
                 if mine.cell_type == "code" and i in by_id and i not in graded]
        graded.update(c.id for c in named)
        yield LabCell(mine, answer, "self-check" if named else "text", named)
    for index, check in enumerate(c for c in checks if c.id not in graded):
        cell = nbformat.v4.new_code_cell(HIDDEN_NOTE, id=f"{lab.number}-hidden-{index:02d}")
        yield LabCell(cell, None, "hidden", [check])


def _checks_of(lab: str, extra: Sequence[Check]) -> list[Check]:
    from mqkit.exceptions import ConfigError

    try:
        return lab_checks(lab, list(extra))[0]
    except ConfigError:  # a lab without checks (none today) is exported without tests
        return []


def write_notebooks(labs: Sequence[LabNotebooks], checks: str | Path | None,
                    notebook: Callable[[LabNotebooks, ExtraChecks], Any],
                    path: Callable[[LabNotebooks], Path]) -> list[Path]:
    """Write each lab's notebook for an autograder: ``notebook(lab, extra)`` at ``path(lab)``.

    Args:
        labs: the labs' rendered notebooks.
        checks: the instructor's extra-checks file: hidden tests.
        notebook: makes the autograder's notebook of a lab.
        path: where a lab's notebook goes (its folders are made).

    Returns:
        The notebooks written, in the labs' order.

    Raises:
        ConfigError: the checks file does not load.
    """
    import nbformat

    extra = ExtraChecks.load(checks)
    written = []
    for lab in labs:
        target = path(lab)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(nbformat.writes(notebook(lab, extra)) + "\n", encoding="utf-8")
        written.append(target)
    return written


def grade_id(prefix: str, name: str) -> str:
    """An id nbgrader and Otter accept (letters, digits, ``-``, ``_``): ``check-03-all-acked``."""
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}"
