"""nbgrader grades the labs as `mqkit grade` does: a course from labs/_src, real tools, brokers.

`mqkit build-labs --format nbgrader` writes the course; `nbgrader generate_assignment` releases
it; five submissions per lab (solution, blank, partial, one that monkeypatches mqkit's checks
in its kernel, one that fakes the verdict process there: tool_submissions.py) go through
`nbgrader autograde` in a namespace each; `mqkit grade` grades the same code once a session
(conftest.py).
Lab 03 is the AMQP lab (with a hidden check from the instructor's file), lab 10 the MQTT lab.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mqkit import cli
from mqkit.admin import Admin
from mqkit.grading.nbgrader_course import autograde
from tests.grading.tool_submissions import (
    EXTRA,
    LABS,
    NAMES,
    STUDENTS,
    code_of,
    mqkit_submissions,
    student_notebook,
    submissions,
)
from tests.helpers import require

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _needs_nbgrader() -> None:
    require(importlib.util.find_spec("nbgrader") is not None,
            "nbgrader is not installed (it is in the test extra: pip install -e '.[test]')")

def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ,
           "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ["PATH"]))}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def build(folder: Path, *extra: str) -> Path:
    labs = [arg for number in NAMES for arg in ("--lab", number)]
    assert cli.main(["build-labs", "--labs", str(LABS), "--format", "nbgrader", str(folder),
                     *labs, *extra]) == 0
    for number in NAMES:
        nbgrader(folder, "generate_assignment", f"lab{number}")
    return folder


def without_nbgrader(cell: dict) -> dict:
    """A cell without what nbgrader adds: its metadata and LockCells' editable/deletable."""
    metadata = {k: v for k, v in cell["metadata"].items()
                if k not in ("nbgrader", "editable", "deletable")}
    return {**cell, "metadata": metadata}


def release(course: Path, number: str) -> dict:
    path = course / "release" / f"lab{number}" / f"lab{number}.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("nbgrader"), "--checks", str(EXTRA))


def test_release_is_the_student_notebook(tmp_path) -> None:
    plain = build(tmp_path)
    for number in NAMES:
        released, student = release(plain, number), student_notebook(number)
        assert released["metadata"] == student["metadata"]
        assert [without_nbgrader(c) for c in released["cells"]] == student["cells"]
        # The stub is mqkit's, which runs, never nbgrader's raise NotImplementedError().
        assert "NotImplementedError" not in json.dumps(released)


def test_hidden_checks_add_only_a_comment_cell(course) -> None:
    released, student = release(course, "03"), student_notebook("03")
    cells = [without_nbgrader(c) for c in released["cells"]]
    assert cells[:len(student["cells"])] == student["cells"]
    hidden = cells[len(student["cells"]):]
    assert ["".join(c["source"]) for c in hidden] == [
        "# Hidden tests: when your notebook is graded, more checks run here."]
    # Neither the id nor the code of the instructor's check reaches the students.
    assert "hidden-orders" not in json.dumps(released["cells"][-1]["source"])
    assert "exactly_one_message" not in json.dumps(released)
    source = (course / "source" / "lab03" / "lab03.ipynb").read_text(encoding="utf-8")
    assert "exactly_one_message" in source


def test_self_checks_are_graded_cells_with_the_checks_points(course) -> None:
    source = json.loads((course / "source" / "lab10" / "lab10.ipynb").read_text())
    graded = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
              for c in source["cells"] if c["metadata"].get("nbgrader", {}).get("grade")}
    assert graded == {"check-10-retained-message": 1, "check-10-wildcard-filters": 2}


def test_build_needs_a_folder(capsys) -> None:
    assert cli.main(["build-labs", "--labs", str(LABS), "--format", "nbgrader"]) == 2
    assert "needs the folder to write" in capsys.readouterr().err


def test_verdict_process_exit_codes(tmp_path) -> None:
    """Unknown check: 2, before any broker is looked for; a hidden check needs its file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    command = [sys.executable, "-m", "mqkit.grading.verdict"]
    unknown = subprocess.run([*command, "99.no-such-check"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)
    assert unknown.returncode == 2
    assert "unknown check 99.no-such-check" in unknown.stdout
    hidden = subprocess.run([*command, "03.hidden-tasks-durable"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert hidden.returncode == 2
    wrong_file = subprocess.run([*command, "03.hidden-tasks-durable", "--checks", "-"],
                                input="x = 1\n", env=env, capture_output=True, text=True,
                                timeout=60, check=False)
    assert wrong_file.returncode == 2


@pytest.fixture(scope="module", params=sorted(NAMES))
def graded(request, course, brokers, mqkit_totals):
    """(lab, nbgrader's totals, mqkit grade's totals) for one lab."""
    number = request.param
    mqkit_totals.start(number)  # graded meanwhile, one notebook at a time, as nbgrader does
    assignment = f"lab{number}"
    released = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4)
    theirs = mqkit_submissions(number)
    for student, notebook in submissions(released, number).items():
        # mqkit grade's totals are of the same code, built from mqkit's student notebook.
        assert code_of(notebook) == code_of(theirs[student])
        target = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
    scores = autograde(course, assignment, students=STUDENTS, broker=brokers)
    ours = {s.student: (s.points, s.max_points) for s in scores}
    return number, ours, mqkit_totals(number)


def test_nbgrader_totals_equal_mqkit_grade(graded) -> None:
    _, nbgrader_totals, mqkit_totals = graded
    assert sorted(nbgrader_totals) == list(STUDENTS)
    assert nbgrader_totals == {s: (float(p), float(m)) for s, (p, m) in mqkit_totals.items()}
    full = mqkit_totals["solution"][1]
    assert mqkit_totals["solution"][0] == full
    assert mqkit_totals["blank"][0] < mqkit_totals["partial"][0] < full


def test_monkeypatching_the_checks_gains_nothing(graded, course) -> None:
    number, nbgrader_totals, _ = graded
    assert nbgrader_totals["patcher"] == nbgrader_totals["blank"]
    # The patch did work inside the kernel: a test calling the check there would have passed.
    path = course / "autograded" / "patcher" / f"lab{number}" / f"lab{number}.ipynb"
    printed = "".join(o.get("text", "") for o in nbformat.read(path, 4).cells[0].outputs)
    assert "in-kernel verdict: passed" in printed


def test_faking_the_verdict_process_gains_nothing(graded, course) -> None:
    number, nbgrader_totals, _ = graded
    assert nbgrader_totals["faker"] == nbgrader_totals["blank"]
    path = course / "autograded" / "faker" / f"lab{number}" / f"lab{number}.ipynb"
    notebook = nbformat.read(path, 4)
    printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    assert "in-kernel verdict process exit: 0" in printed
    # The test cells show the verdict nbgrader's process took, never the kernel's fake.
    verdicts = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                       for o in c.outputs if c.metadata.get("nbgrader", {}).get("grade"))
    assert "not yet" in verdicts
    assert "(faked)" not in verdicts


def test_kernel_holds_only_its_namespace(graded, course, brokers) -> None:
    number = graded[0]
    path = course / "autograded" / "patcher" / f"lab{number}" / f"lab{number}.ipynb"
    printed = "".join(o.get("text", "") for o in nbformat.read(path, 4).cells[0].outputs)
    assert "kernel AMQP user: grade-patcher-" in printed
    assert brokers.amqp.password not in path.read_text(encoding="utf-8")
    # The namespaces are gone once nbgrader is done.
    assert not [v["name"] for v in Admin(brokers).vhosts()
                if v["name"].startswith(("grade-patcher-", "grade-solution-"))]


def test_a_submission_nbgrader_cannot_read_is_reported(course, brokers) -> None:
    target = course / "submitted" / "garbled" / "lab10" / "lab10.ipynb"
    target.parent.mkdir(parents=True)
    target.write_text("this is not a notebook", encoding="utf-8")
    (score,) = autograde(course, "lab10", students=["garbled"], broker=brokers)
    assert (score.student, score.points, score.max_points) == ("garbled", 0.0, 0.0)
    assert score.error
