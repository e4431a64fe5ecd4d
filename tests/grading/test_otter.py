"""Otter grades the labs as `mqkit grade` does: assignments from labs/_src, real Otter, brokers.

`mqkit build-labs --format otter` writes the master notebooks; `otter assign` makes the student
notebook and the autograder zip; four submissions of each lab (solution, blank, partial,
monkeypatching: tool_submissions.py) are graded by Otter's local mode, `otter run` (its `otter
grade` needs Docker and Otter's image), in a namespace each; `mqkit grade` grades the same code
once a session (conftest.py). Otter's test cells run in the student's kernel, so the submission
that fakes the verdict process there is left out (docs/grading.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mqkit import cli
from mqkit.grading.otter_assignment import grade as otter_grade
from tests.grading.tool_submissions import (
    EXTRA,
    LABS,
    NAMES,
    code_of,
    mqkit_submissions,
    student_notebook,
    submissions,
)
from tests.helpers import require

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _needs_otter() -> None:
    require(importlib.util.find_spec("otter") is not None,
            "otter-grader is not installed (it is in the test extra: pip install -e '.[test]')")

STUDENTS = ("blank", "partial", "patcher", "solution")


def otter_assign(master: Path) -> Path:
    env = {**os.environ,
           "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ["PATH"]))}
    done = subprocess.run([sys.executable, "-m", "otter", "assign", master.name, "dist"],
                          cwd=master.parent, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return master.parent / "dist"


@pytest.fixture(scope="module")
def assignments(tmp_path_factory) -> dict[str, Path]:
    """``{lab: dist folder}`` of ``otter assign``."""
    folder = tmp_path_factory.mktemp("otter")
    labs = [arg for number in NAMES for arg in ("--lab", number)]
    assert cli.main(["build-labs", "--labs", str(LABS), "--format", "otter", str(folder),
                     *labs, "--checks", str(EXTRA)]) == 0
    return {number: otter_assign(folder / f"lab{number}" / f"lab{number}.ipynb")
            for number in NAMES}


def without_otter(cell: dict) -> dict:
    """A cell without what Otter adds: its metadata and the lock on test cells."""
    metadata = {k: v for k, v in cell["metadata"].items()
                if k not in ("otter", "editable", "deletable")}
    return {**cell, "metadata": metadata}


def test_student_notebook_is_mqkits(assignments) -> None:
    for number, dist in assignments.items():
        released = json.loads((dist / "student" / f"lab{number}.ipynb").read_text())
        student = student_notebook(number)
        assert {k: v for k, v in released["metadata"].items() if k != "otter"} == \
            student["metadata"]
        assert [without_otter(c) for c in released["cells"]] == student["cells"]


def test_hidden_test_stays_in_the_autograder(assignments) -> None:
    dist = assignments["03"]
    student = (dist / "student" / "tests" / "check_03_hidden_tasks_durable.py").read_text()
    autograder = (dist / "autograder" / "tests" / "check_03_hidden_tasks_durable.py").read_text()
    assert "mqkit.grading.verdict" not in student
    assert "mqkit.grading.verdict" in autograder
    assert "hidden=True" in autograder


@pytest.fixture(scope="module", params=sorted(NAMES))
def graded(request, assignments, brokers, mqkit_totals, tmp_path_factory):
    """(lab, Otter's totals, mqkit grade's totals) for one lab."""
    number = request.param
    dist = assignments[number]
    inbox = tmp_path_factory.mktemp(f"otter-inbox-{number}")
    released = nbformat.read(dist / "student" / f"lab{number}.ipynb", 4)
    theirs = mqkit_submissions(number)
    for student, notebook in submissions(released, number, STUDENTS).items():
        # mqkit grade's totals are of the same code, built from mqkit's student notebook.
        assert code_of(notebook) == code_of(theirs[student])
        nbformat.write(notebook, inbox / f"{student}.ipynb")
    zips = sorted((dist / "autograder").glob("*.zip"))
    assert len(zips) == 1
    results = tmp_path_factory.mktemp(f"otter-results-{number}")
    # Two submissions at a time (a namespace and an `otter run` each), once mqkit grade is
    # done with this lab: two notebooks at a time, as mqkit grade --workers 2 runs them.
    reference = {s: mqkit_totals(number)[s] for s in STUDENTS}
    paths = sorted(inbox.glob("*.ipynb"))
    scores = otter_grade(zips[0], paths, broker=brokers, out=results, workers=2)
    assert [score.student for score in scores] == sorted(STUDENTS)  # in order, as one worker
    shutil.copytree(inbox, results / "inbox")
    ours = {s.student: (s.points, s.max_points) for s in scores}
    return number, ours, reference


def test_otter_totals_equal_mqkit_grade(graded) -> None:
    _, otter_totals, mqkit_totals = graded
    assert sorted(otter_totals) == list(STUDENTS)
    assert otter_totals == {s: (float(p), float(m)) for s, (p, m) in mqkit_totals.items()}
    full = mqkit_totals["solution"][1]
    assert mqkit_totals["solution"][0] == full
    assert mqkit_totals["blank"][0] < mqkit_totals["partial"][0] < full


def test_monkeypatching_the_checks_gains_nothing(graded) -> None:
    _, otter_totals, _ = graded
    assert otter_totals["patcher"] == otter_totals["blank"]


def test_a_notebook_of_another_assignment_is_reported(assignments, brokers, tmp_path) -> None:
    """Otter refuses a notebook without its assignment's name; the batch goes on."""
    foreign = tmp_path / "foreign.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), foreign)
    zips = sorted((assignments["10"] / "autograder").glob("*.zip"))
    (score,) = otter_grade(zips[0], [foreign], broker=brokers)
    assert (score.student, score.points, score.max_points) == ("foreign", 0.0, 0.0)
    assert "assignment" in score.error
