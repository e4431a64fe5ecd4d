"""The submissions the nbgrader and Otter tests grade, and what they share.

Every lab gets the same five: solution, blank, partial (its first exercises solved), patcher
(a first cell that makes every check pass inside its kernel) and faker (a first cell that
makes a test cell's own verdict process "pass" inside its kernel). Each tool grades them built
from its own blank notebook; `mqkit grade` grades them once per session (conftest.py's
`mqkit_totals`), built from mqkit's student notebook (:func:`mqkit_submissions`): the same
code, as :func:`code_of` lets a test check.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from mqkit.authoring import render_notebook
from mqkit.grading.export import HIDDEN_NOTE

LABS = Path(__file__).resolve().parents[2] / "labs"
EXTRA = Path(__file__).with_name("extra_checks.py")
NAMES = {"03": "03-publish-consume", "10": "10-mqtt"}
STUDENTS = ("blank", "faker", "partial", "patcher", "solution")
#: Exercises the partial submission solves: some that a check grades, not all of them.
PARTIAL = {"03": 1, "10": 2}

# A submission that makes every check pass inside its kernel, proves the patch works there,
# and shows which broker credentials its kernel holds.
PATCH = """\
import os
import mqkit.grading
from mqkit.grading import CheckResult, Status, get_check
from mqkit.grading.registry import Check

def _always(self, endpoints, **params):
    return CheckResult(self.id, Status.PASSED, "patched", "", self.points, self.points)

Check.run = _always
Check.assert_passed = _always
Check.self_check = _always
mqkit.grading.self_check = lambda check, endpoints, **params: _always(get_check(check), None)
print("in-kernel verdict:", get_check("{check}").assert_passed(None).status)
print("kernel variables:", sorted(k for k in os.environ if k.startswith("MQKIT_")))
print("kernel AMQP user:", os.environ.get("MQKIT_AMQP_URL", "").split("//")[1].split(":")[0])
"""

# A submission that makes a test cell's own verdict process pass, inside its kernel, by
# replacing subprocess.run there: a grader that takes the verdict in its own process gains
# nothing from it.
FAKE = """\
import subprocess, sys

class _Passed:
    returncode, stdout, stderr = 0, "✔ passed  (faked)", ""

subprocess.run = lambda *args, **kwargs: _Passed()
print("in-kernel verdict process exit:",
      subprocess.run([sys.executable, "-m", "mqkit.grading.verdict", "{check}"]).returncode)
"""


def rendered(number: str, kind: str) -> str:
    """Lab ``number``'s ``student`` or ``solution`` notebook, as mqkit renders it (JSON)."""
    source = (LABS / "_src" / f"{NAMES[number]}.py").read_text(encoding="utf-8")
    return render_notebook(source, kind, NAMES[number], with_outputs=False)


def student_notebook(number: str) -> dict:
    """mqkit's student notebook of lab ``number``, as a dictionary."""
    return json.loads(rendered(number, "student"))


def submissions(blank: nbformat.NotebookNode, number: str,
                students: tuple[str, ...] = STUDENTS) -> dict[str, nbformat.NotebookNode]:
    """``students``' submissions built from a blank notebook of lab ``number``.

    ``blank`` is the student notebook a tool released (or mqkit's own); its cells are mqkit's
    in order, so an exercise is filled in from the same cell of mqkit's solution notebook.
    """
    answers = nbformat.reads(rendered(number, "solution"), 4)
    exercises = [i for i, c in enumerate(blank.cells)
                 if "exercise" in c.metadata.get("tags", [])]
    assert len(exercises) >= 2

    def solved(count: int) -> nbformat.NotebookNode:
        notebook = nbformat.from_dict(json.loads(json.dumps(blank)))
        for index in exercises[:count]:
            notebook.cells[index].source = answers.cells[index].source
        return notebook

    def cheating(code: str, cell_id: str) -> nbformat.NotebookNode:
        notebook = solved(0)
        first = f"{number}.all-acked" if number == "03" else f"{number}.retained-message"
        notebook.cells.insert(0, nbformat.v4.new_code_cell(code.replace("{check}", first),
                                                           id=cell_id))
        return notebook

    everyone = {"blank": solved(0), "faker": cheating(FAKE, "fake"),
                "partial": solved(PARTIAL[number]), "patcher": cheating(PATCH, "patch"),
                "solution": solved(len(exercises))}
    return {student: everyone[student] for student in students}


def mqkit_submissions(number: str) -> dict[str, nbformat.NotebookNode]:
    """Every student's submission of lab ``number``, built from mqkit's student notebook."""
    return submissions(nbformat.reads(rendered(number, "student"), 4), number)


def code_of(notebook: nbformat.NotebookNode) -> list[str]:
    """The code a kernel runs: the code cells' sources, without nbgrader's hidden-test note."""
    return [c.source for c in notebook.cells
            if c.cell_type == "code" and c.source != HIDDEN_NOTE]
