"""The labs as Otter-Grader assignments, and ``otter run`` with a namespace per submission.

:func:`build_course` writes one Otter master notebook per lab, ``DIR/labNN/labNN.ipynb``, in
Otter's notebook format (raw ``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION``, ``# BEGIN
TESTS`` cells), for ``otter assign``:

* an **exercise** cell holds mqkit's student stub in an Otter prompt block and the solution
  in a ``# BEGIN SOLUTION NO PROMPT`` block, so the student notebook gets mqkit's stub (which
  runs) rather than Otter's ``...``;
* a **self-check** cell is a question worth its check's points whose one test runs the check
  in a fresh process (:mod:`mqkit.grading.verdict`); the cell's ``otter.tests`` metadata makes
  Otter run the test right after it, while the notebook's workers still run;
* each **hidden** check (the instructor's ``--checks`` file) is a question with a hidden test
  and no cell, run after the last cell.

Otter's own cells (init, check, check-all, export) are left out, so the student notebook is
mqkit's student notebook plus Otter's metadata.

:func:`grade` runs Otter's local mode, ``otter run``, once per submission with a fresh
namespace made in this process; ``otter grade`` does the same in Otter's Docker image (see
``docs/grading.md``).

Example:
    $ mqkit build-labs --format otter otter --checks hidden_checks.py --lab 10
    $ otter assign otter/lab10/lab10.ipynb otter/lab10/dist
    $ python -m mqkit.grading.otter_assignment grade otter/lab10/dist/autograder/*.zip inbox/*.ipynb
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mqkit.endpoints import Endpoints
from mqkit.exceptions import ConfigError
from mqkit.grading.export import ExtraChecks, LabNotebooks, lab_cells, write_notebooks
from mqkit.grading.tool_grading import Score, instructor_brokers, tool_run, write_scores
from mqkit.grading.verdict import verdict_code

log = logging.getLogger(__name__)

#: The assignment config: no Otter cells (the notebook stays mqkit's), tests in files in
#: exception format (the test runs a process, it compares no output), and no test run of the
#: solution while assigning (it needs brokers).
CONFIG = {
    "check_all_cell": False,
    "export_cell": False,
    "generate": True,
    "init_cell": False,
    "run_tests": False,
    "strip_solutions_from_all_cells": True,
    "tests": {"files": True, "ok_format": False},
}


def question_name(check_id: str) -> str:
    """An Otter question (and test file) name for a check: ``check_03_all_acked``."""
    return "check_" + re.sub(r"\W+", "_", check_id)


def _raw(text: str) -> Any:
    import nbformat

    return nbformat.v4.new_raw_cell(text)


def _exercise(student: str, solution: str) -> str:
    """Otter markup that gives students ``student`` and the autograder ``solution``.

    The stub is a raw string in the solution notebook (a statement that does nothing) whose
    delimiting lines Otter drops for students; the solution sits in a region Otter removes.
    """
    quote = "'''" if '"""' in student else '"""'
    if quote in student:
        raise ValueError("an exercise stub with both kinds of triple quotes cannot be a prompt")
    return (f"r{quote} # BEGIN PROMPT\n{student}\n{quote};  # END PROMPT\n"
            f"# BEGIN SOLUTION NO PROMPT\n{solution}\n# END SOLUTION")


def _test_cell(name: str, points: int, hidden: bool, code: str) -> Any:
    import nbformat

    body = "".join(f"    {line}\n" if line else "\n" for line in code.splitlines())
    source = (f'""" # BEGIN TEST CONFIG\npoints: {points}\nhidden: {str(hidden).lower()}\n'
              f'""" # END TEST CONFIG\ndef test_{name}():\n{body}test_{name}()')
    return nbformat.v4.new_code_cell(source)


def master_notebook(lab: LabNotebooks, extra: ExtraChecks) -> Any:
    """The Otter master notebook of one lab (see the module docstring)."""
    import copy

    import nbformat
    import yaml

    notebook = nbformat.reads(lab.student, as_version=4)
    config = {"name": lab.assignment, **CONFIG}
    cells = [_raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=True))]
    for item in lab_cells(lab, extra):
        cell = copy.deepcopy(item.student)
        if item.kind == "exercise":
            if cell.cell_type == "code":
                cell.source = _exercise(item.student.source, item.solution.source)
            cells.append(cell)
            continue
        if item.kind not in ("self-check", "hidden"):
            cells.append(cell)
            continue
        name = question_name("-".join(c.id for c in item.checks))
        cells.append(_raw(f"# BEGIN QUESTION\nname: {name}\npoints: {item.points}\n"
                          "check_cell: false"))
        if item.kind == "self-check":
            cell.metadata["otter"] = {"tests": [name]}
            cells.append(cell)
        code = "".join(verdict_code(c.id, extra.source_for(c.id)) for c in item.checks)
        cells += [_raw("# BEGIN TESTS"),
                  _test_cell(name, item.points, item.kind == "hidden", code),
                  _raw("# END TESTS"), _raw("# END QUESTION")]
    notebook.cells = cells
    return notebook


def build_course(folder: Path, labs: Sequence[LabNotebooks],
                 checks: str | Path | None = None) -> list[Path]:
    """Write ``folder/labNN/labNN.ipynb``, an Otter master notebook per lab.

    Args:
        folder: where to write.
        labs: the labs' rendered notebooks.
        checks: the instructor's extra-checks file: hidden tests.

    Returns:
        The notebooks written.

    Raises:
        ConfigError: the checks file does not load.
    """
    return write_notebooks(labs, checks, master_notebook,
                           lambda lab: folder / lab.assignment / f"{lab.assignment}.ipynb")


# -- grading with a namespace per submission --------------------------------------------------


def grade(autograder: Path, submissions: Sequence[Path], *, broker: Endpoints | None = None,
          with_mqtt: bool = True, out: Path | None = None, workers: int = 1) -> list[Score]:
    """Grade each submission with ``otter run`` (Otter's local mode) in its own namespace.

    The student is the file name (``alice.ipynb``). Each run gets only its namespace's
    ``MQKIT_*`` variables; Otter's kernel is not sandboxed (see ``docs/grading.md``).

    Args:
        autograder: the autograder zip that ``otter assign`` generated.
        submissions: the students' notebooks.
        broker: the instructor's brokers (default: :func:`mqkit.start_brokers`).
        with_mqtt: give each submission its own Mosquitto.
        out: where to keep Otter's ``STUDENT.json`` results (default: nowhere).
        workers: submissions graded at the same time, each an ``otter run`` in its own
            namespace (as ``mqkit grade --workers``).

    Returns:
        The scores, sorted by student; one that Otter could not grade (another assignment's
        notebook, not a notebook) has 0 of 0 points and Otter's last error line (the batch
        goes on).
    """
    from mqkit.config import Settings

    if workers < 1:
        raise ConfigError(f"workers={workers} must be at least 1.", hint="E.g. 2.")
    broker = instructor_brokers(broker)
    binary = Settings.from_env().mosquitto_binary

    def one(path: Path) -> Score:
        with tool_run(broker, path.stem, with_mqtt=with_mqtt, prefix="mqkit-otter-",
                      mosquitto_binary=binary) as run:
            _, error = run.command([sys.executable, "-m", "otter", "run", "--no-logo", "-a",
                                    str(autograder.resolve()), "-o", str(run.home),
                                    str(path.resolve())], cwd=run.home)
            if error:
                log.error("otter run failed for %s: %s", run.student, error)
                return Score(run.student, 0.0, 0.0, error)
            results = json.loads((run.home / "results.json").read_text(encoding="utf-8"))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{path.stem}.json").write_text(json.dumps(results, indent=1),
                                                   encoding="utf-8")
        return _score(path.stem, results)

    paths = sorted(submissions)
    if workers == 1 or len(paths) <= 1:
        return [one(path) for path in paths]
    # Threads suffice: each waits on its own `otter run` process and namespace.
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="otter") as pool:
        return list(pool.map(one, paths))


def _score(student: str, results: dict[str, Any]) -> Score:
    tests = results.get("tests", [])
    return Score(student, float(sum(t.get("score", 0) for t in tests)),
                 float(sum(t.get("max_score", 0) for t in tests)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mqkit.grading.otter_assignment grade AUTOGRADER.zip NOTEBOOK...``."""
    parser = argparse.ArgumentParser(prog="python -m mqkit.grading.otter_assignment")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("grade", help="otter run, a namespace per submission")
    run.add_argument("autograder", help="the autograder zip of otter assign")
    run.add_argument("submissions", nargs="+", help="the students' notebooks (STUDENT.ipynb)")
    run.add_argument("--out", default=None, help="keep Otter's results here")
    run.add_argument("--workers", type=int, default=1,
                     help="submissions graded at the same time (default 1)")
    args = parser.parse_args(argv)
    return write_scores(grade(Path(args.autograder), [Path(p) for p in args.submissions],
                              out=Path(args.out) if args.out else None,
                              workers=args.workers),
                        "Otter", sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
