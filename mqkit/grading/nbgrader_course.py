"""The labs as an nbgrader course, and ``nbgrader autograde`` with a namespace per submission.

:func:`build_course` writes ``DIR/source/labNN/labNN.ipynb`` for every lab and an
``nbgrader_config.py`` that plugs mqkit in:

* an **exercise** cell is an nbgrader solution cell holding the solution; its student stub
  (mqkit's, which keeps later cells running, not nbgrader's ``raise NotImplementedError()``)
  rides in the cell's ``mqkit.student_source`` metadata, and :func:`clear_solutions_class`,
  nbgrader's ``ClearSolutions`` step in ``generate_assignment``, puts it in place;
* a **self-check** cell is a locked autograder test cell worth its check's points: the
  student sees their ``self_check(...)`` line, and a hidden test region before it runs the
  check in a fresh process (:mod:`mqkit.grading.verdict`); under the course's config,
  nbgrader's own process runs that process instead of the kernel (:func:`execute_class`);
* each **hidden** check (the instructor's ``--checks`` file) is a test cell at the end whose
  code is all hidden.

So ``nbgrader generate_assignment labNN`` releases mqkit's student notebook, plus one
comment cell per hidden check, and nbgrader's own metadata.

:func:`autograde` runs ``nbgrader autograde`` once per submission, each time with a fresh
namespace (vhost, scoped user, own Mosquitto) made in this process: the nbgrader process and
its kernel get only the namespace's ``MQKIT_*`` variables, never an administrator's.

Example:
    $ mqkit build-labs --format nbgrader course --checks hidden_checks.py
    $ cd course && nbgrader generate_assignment lab03 && nbgrader collect ...
    $ python -m mqkit.grading.nbgrader_course autograde lab03 --course course
"""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mqkit.endpoints import Endpoints
from mqkit.exceptions import MissingDependency
from mqkit.grading.export import ExtraChecks, LabNotebooks, grade_id, lab_cells, write_notebooks
from mqkit.grading.tool_grading import Score, tool_runs, write_scores
from mqkit.grading.verdict import BEGIN_HIDDEN, END_HIDDEN, verdict_code

log = logging.getLogger(__name__)

#: nbgrader's cell metadata format.
SCHEMA_VERSION = 3
#: Seconds one cell may run under ``nbgrader autograde`` (a check process included).
CELL_TIMEOUT = 240

#: Runs before a test cell's visible line: a submission that lost its import or `endpoints`
#: must not lose the check's points for a NameError there (mqkit grade never runs that line).
GUARD = "from mqkit.grading import self_check\nglobals().setdefault('endpoints', None)\n"

CONFIG = '''\
"""nbgrader settings of the mqkit labs, written by `mqkit build-labs --format nbgrader`."""

from mqkit.grading.nbgrader_course import configure

configure(get_config())  # noqa: F821 (nbgrader provides get_config)
'''


def _nbgrader() -> Any:
    try:
        import nbgrader
    except ImportError:
        raise MissingDependency("The nbgrader course needs the Python package 'nbgrader'.",
                                hint="pip install nbgrader") from None
    return nbgrader


def source_notebook(lab: LabNotebooks, extra: ExtraChecks) -> Any:
    """The nbgrader source notebook of one lab (see the module docstring)."""
    import nbformat

    notebook = nbformat.reads(lab.student, as_version=4)
    cells = []
    for item in lab_cells(lab, extra):
        cell = copy.deepcopy(item.student)
        if item.kind == "exercise":
            cell.metadata["mqkit"] = {"student_source": item.student.source}
            cell.source = item.solution.source
            if cell.cell_type == "code":  # nbgrader requires markdown answers to be graded
                cell.metadata["nbgrader"] = _metadata(grade_id("answer", cell.id),
                                                      solution=True)
        elif item.kind in ("self-check", "hidden"):
            tests = "".join(verdict_code(c.id, extra.source_for(c.id)) for c in item.checks)
            tests += GUARD
            cell.source = f"{BEGIN_HIDDEN}\n{tests}{END_HIDDEN}\n{cell.source}"
            name = "-".join(c.id for c in item.checks)
            cell.metadata["nbgrader"] = _metadata(grade_id("check", name), grade=True,
                                                  locked=True, points=item.points)
        cells.append(cell)
    notebook.cells = cells
    return notebook


def _metadata(name: str, *, solution: bool = False, grade: bool = False,
              locked: bool = False, points: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"grade": grade, "grade_id": name, "locked": locked,
                            "schema_version": SCHEMA_VERSION, "solution": solution,
                            "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def build_course(folder: Path, labs: Sequence[LabNotebooks],
                 checks: str | Path | None = None) -> list[Path]:
    """Write an nbgrader course: ``folder/source/labNN/labNN.ipynb`` and its config.

    Args:
        folder: the course folder (nbgrader's ``CourseDirectory.root``).
        labs: the labs' rendered notebooks.
        checks: the instructor's extra-checks file: hidden tests.

    Returns:
        The files written.

    Raises:
        ConfigError: the checks file does not load.
    """
    written = write_notebooks(
        labs, checks, source_notebook,
        lambda lab: folder / "source" / lab.assignment / f"{lab.assignment}.ipynb")
    config = folder / "nbgrader_config.py"
    config.write_text(CONFIG, encoding="utf-8")
    written.append(config)
    return written


# -- what nbgrader_config.py does -------------------------------------------------------


@functools.cache
def clear_solutions_class() -> type:
    """Nbgrader's ``ClearSolutions``, putting mqkit's student stub in an exercise cell.

    A cell with ``mqkit.student_source`` metadata gets that source (and loses the key);
    any other cell is nbgrader's business as usual.
    """
    from nbgrader.preprocessors import ClearSolutions

    class MQKitClearSolutions(ClearSolutions):  # type: ignore[misc]
        """ClearSolutions that releases mqkit's stub of an exercise."""

        def preprocess_cell(self, cell: Any, resources: Any, index: int) -> Any:
            own = cell.metadata.get("mqkit", {})
            if "student_source" not in own:
                return super().preprocess_cell(cell, resources, index)
            cell.source = own.pop("student_source")
            if not own:
                del cell.metadata["mqkit"]
            return cell, resources

    return MQKitClearSolutions


def kernel_source(source: str) -> str:
    """A test cell's code without its hidden region: what the kernel runs under the grader."""
    kept, hidden = [], False
    for line in source.split("\n"):
        if line.strip() == BEGIN_HIDDEN:
            hidden = True
            kept += GUARD.rstrip("\n").split("\n")
        elif line.strip() == END_HIDDEN:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept)


@functools.cache
def execute_class() -> type:
    """The ``Execute`` step of nbgrader, taking the verdict of each mqkit test in this process.

    A grade cell whose code (restored from nbgrader's database, for a locked cell) holds
    :func:`~mqkit.grading.verdict.verdict_code` runs in the kernel without it; right after,
    while the kernel still runs, nbgrader's own process runs those checks in a fresh process
    and the cell's outputs become the verdict: its line, and an error when it did not pass,
    which is how nbgrader scores a test cell. Nothing the kernel did to itself (mqkit,
    ``subprocess``, ``sys.executable``) or printed (a stray line on stderr, which nbgrader
    scores 0) decides.
    """
    import nbformat
    from nbgrader import utils
    from nbgrader.preprocessors import Execute

    from mqkit.grading.verdict import run_verdict, verdict_calls

    class MQKitExecute(Execute):  # type: ignore[misc]
        """Execute that takes the verdict of mqkit's test cells itself."""

        def preprocess_cell(self, cell: Any, resources: Any, index: int) -> Any:
            calls = (verdict_calls(cell.source)
                     if cell.cell_type == "code" and utils.is_grade(cell) else [])
            if not calls:
                return super().preprocess_cell(cell, resources, index)
            original = cell.source
            cell.source = kernel_source(original)
            cell, resources = super().preprocess_cell(cell, resources, index)
            cell.source = original
            outputs = []
            for check_id, checks_source in calls:
                passed, line = run_verdict(check_id, checks_source)
                outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                      text=line + "\n"))
                if not passed:
                    outputs.append(nbformat.v4.new_output(
                        "error", ename="CheckFailed", evalue=line, traceback=[line]))
            cell.outputs = outputs
            return cell, resources

    return MQKitExecute


def configure(config: Any) -> None:
    """Set up nbgrader for the mqkit labs (called from the course's ``nbgrader_config.py``).

    ``generate_assignment`` releases mqkit's stubs; ``autograde`` takes the verdicts of
    mqkit's test cells in its own process (:func:`execute_class`), and cells get time for
    their checks.
    """
    _nbgrader()
    from nbgrader.converters import Autograde, GenerateAssignment
    from nbgrader.preprocessors import ClearSolutions, Execute

    steps = GenerateAssignment.class_traits()["preprocessors"].default()
    config.GenerateAssignment.preprocessors = [
        clear_solutions_class() if step is ClearSolutions else step for step in steps]
    steps = Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [
        execute_class() if step is Execute else step for step in steps]
    # A solution cell an instructor adds by hand gets mqkit's placeholder, which runs.
    config.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE"}
    config.ClearSolutions.text_stub = "*Your answer here.*"
    config.Execute.timeout = CELL_TIMEOUT


# -- autograding with a namespace per submission ---------------------------------------------


def autograde(course: Path, assignment: str, *, students: Sequence[str] | None = None,
              broker: Endpoints | None = None, with_mqtt: bool = True) -> list[Score]:
    """``nbgrader autograde`` each submission in a namespace of its own; the totals.

    For every student with ``course/submitted/STUDENT/ASSIGNMENT``, a vhost with a scoped
    user (and a Mosquitto) is created here, ``nbgrader autograde ASSIGNMENT --student
    STUDENT`` runs with only that namespace's ``MQKIT_*`` variables (its kernel inherits
    them), and the namespace is removed. nbgrader's kernel is not sandboxed: see
    ``docs/grading.md``.

    Args:
        course: the course folder (holding ``nbgrader_config.py`` and ``submitted/``).
        assignment: ``labNN``.
        students: only these (default: every one who submitted).
        broker: the instructor's brokers (default: :func:`mqkit.start_brokers`).
        with_mqtt: give each submission its own Mosquitto.

    Returns:
        Each student's score, sorted by student; one that nbgrader could not grade has 0 of 0
        points and nbgrader's last error line (the batch goes on).

    Raises:
        MissingDependency: nbgrader is not installed.
    """
    _nbgrader()
    course = course.resolve()
    names = sorted(students or (p.parent.name for p in
                                (course / "submitted").glob(f"*/{assignment}")))
    failed: dict[str, str] = {}
    for run in tool_runs(broker, names, with_mqtt=with_mqtt, prefix="mqkit-nbgrader-"):
        done, error = run.command([sys.executable, "-m", "nbgrader", "autograde", assignment,
                                   "--student", run.student, "--force"], cwd=course)
        log.info("nbgrader autograde %s %s: exit %s", assignment, run.student, done.returncode)
        if error:
            failed[run.student] = error
            log.error("nbgrader autograde %s failed for %s: %s", assignment, run.student,
                      error)
    graded = [s for s in scores(course, assignment, names) if s.student not in failed]
    graded += [Score(student, 0.0, 0.0, error) for student, error in failed.items()]
    return sorted(graded, key=lambda score: score.student)


def scores(course: Path, assignment: str, students: Sequence[str] | None = None) -> list[Score]:
    """The totals in the course's nbgrader gradebook (every graded student by default)."""
    _nbgrader()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as book:
        found = [s for s in book.assignment_submissions(assignment)
                 if students is None or s.student.id in students]
        return sorted((Score(s.student.id, float(s.score), float(s.max_score)) for s in found),
                      key=lambda score: score.student)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mqkit.grading.nbgrader_course autograde labNN [--course DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m mqkit.grading.nbgrader_course")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("autograde", help="nbgrader autograde, a namespace per "
                              "submission")
    run.add_argument("assignment", help="labNN")
    run.add_argument("--course", default=".", help="the course folder (default: .)")
    run.add_argument("--student", action="append", default=None,
                     help="grade only this student (repeatable)")
    args = parser.parse_args(argv)
    return write_scores(autograde(Path(args.course), args.assignment, students=args.student),
                        "nbgrader", sys.stdout)

if __name__ == "__main__":
    sys.exit(main())
