"""Run one check in a fresh process: ``python -m mqkit.grading.verdict ID``.

(Not ``mqkit.grading.check``: a submodule of that name would shadow the ``check`` decorator
that ``mqkit.grading`` exports.)

The test cells of an nbgrader course or an Otter assignment built from the labs run in the
student's kernel, which may have replaced anything in ``mqkit`` (``Check.assert_passed``,
``Check.run``, ``self_check``). They therefore never call a check there: they start this
module in a new interpreter, which imports mqkit afresh, runs the check against the brokers
that the ``MQKIT_*`` variables name (the submission's namespace when grading), prints the
verdict's one line and exits 0 when it passed, 1 when it did not, 2 when it could not be
found. :func:`verdict_code` writes that cell code.

An instructor's hidden check is not importable by id: its file's text goes to the process on
standard input (``--checks -``), so the test cell carries it and nothing on disk has to
travel with the course.

Example:
    $ MQKIT_AMQP_URL=amqp://... python -m mqkit.grading.verdict 03.all-acked
    ✔ passed  03.all-acked: queue 'lab03.tasks' is empty: every message was acknowledged
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mqkit.exceptions import MQKitError
from mqkit.grading.registry import Check, get_check

#: Exit codes: the check passed, did not pass (or could not run), or is unknown.
PASSED, NOT_PASSED, UNKNOWN = 0, 1, 2

#: Seconds a test cell waits for the check process (the slowest check takes about 25 s).
CHECK_TIMEOUT = 180


def find_check(check_id: str, checks_source: str | None = None) -> Check:
    """The built-in check ``check_id``, or the one an extra-checks file's text defines.

    Raises:
        KeyError: no such check.
        ConfigError: the extra-checks text does not load.
    """
    if checks_source is None:
        return get_check(check_id)
    from mqkit.grading.grader import load_extra_checks

    # load_extra_checks executes a file: the text is written to one that lives only as long
    # as the loading.
    with tempfile.TemporaryDirectory(prefix="mqkit-check-") as folder:
        path = Path(folder) / "extra_checks.py"
        path.write_text(checks_source, encoding="utf-8")
        found = {c.id: c for c in load_extra_checks(path)}
    if check_id not in found:
        raise KeyError(f"no check {check_id!r} in the extra checks; "
                       f"known: {', '.join(sorted(found))}")
    return found[check_id]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check named on the command line; print its verdict; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m mqkit.grading.verdict",
        description="Run one mqkit check against the brokers the MQKIT_* variables name.")
    parser.add_argument("check_id", help="the check's id, e.g. 03.all-acked")
    parser.add_argument("--checks", default=None, metavar="FILE",
                        help="an extra-checks file defining the check ('-': read it from "
                             "standard input)")
    parser.add_argument("--hint", type=int, default=1, help="hint levels shown (default 1)")
    args = parser.parse_args(argv)
    source = None
    if args.checks == "-":
        source = sys.stdin.read()
    elif args.checks is not None:
        source = Path(args.checks).read_text(encoding="utf-8")
    try:
        found = find_check(args.check_id, source)
    except (KeyError, MQKitError) as exc:
        sys.stdout.write(f"? unknown check {args.check_id}: {exc}\n")
        return UNKNOWN
    from mqkit.brokers.launcher import start_brokers

    try:
        endpoints = start_brokers()
    except MQKitError as exc:
        sys.stdout.write(f"✘ error  {found.id}: no broker to check: {exc}\n")
        return NOT_PASSED
    result = found.run(endpoints, hint_level=max(1, args.hint))
    sys.stdout.write(result.line() + "\n")
    return PASSED if result.is_passed else NOT_PASSED


#: Marks the code in a test cell that nbgrader and Otter keep from students.
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def verdict_code(check_id: str, checks_source: str | None = None) -> str:
    """Python for a test cell that runs ``check_id`` in a fresh process and asserts it passed.

    Only the standard library is used in the kernel: nothing of mqkit that the submission
    could have replaced there decides the verdict.

    Args:
        check_id: the check's id.
        checks_source: the text of the extra-checks file that defines it (hidden checks).
    """
    command = ["-m", "mqkit.grading.verdict", check_id]
    stdin = ""
    if checks_source is not None:
        command += ["--checks", "-"]
        stdin = f"input={checks_source!r}, "
    return (
        "# The verdict comes from a fresh Python process: nothing this kernel changed counts.\n"
        "import subprocess as _mqkit_subprocess, sys as _mqkit_sys\n"
        "_mqkit_verdict = _mqkit_subprocess.run(\n"
        f"    [_mqkit_sys.executable, *{command!r}], {stdin}\n"
        f"    capture_output=True, text=True, timeout={CHECK_TIMEOUT})\n"
        "print(_mqkit_verdict.stdout.strip())\n"
        "assert _mqkit_verdict.returncode == 0, (\n"
        "    _mqkit_verdict.stdout.strip() or _mqkit_verdict.stderr.strip()[-800:])\n")


def verdict_calls(source: str) -> list[tuple[str, str | None]]:
    """The checks a test cell's :func:`verdict_code` runs: ``(check id, checks text)`` each.

    Read from the code itself (its syntax tree), so a grader runs exactly what the cell
    would have run. Code that does not parse, or has no verdict call, has none.
    """
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        listed = node.args[0]
        if not isinstance(listed, ast.List):
            continue
        words = [item.value.elts for item in listed.elts
                 if isinstance(item, ast.Starred) and isinstance(item.value, ast.List)]
        argv = [w.value for group in words for w in group if isinstance(w, ast.Constant)]
        if argv[:2] != ["-m", "mqkit.grading.verdict"] or len(argv) < 3:
            continue
        stdin = next((k.value.value for k in node.keywords
                      if k.arg == "input" and isinstance(k.value, ast.Constant)), None)
        found.append((str(argv[2]), stdin if "--checks" in argv else None))
    return found


def run_verdict(check_id: str, checks_source: str | None = None,
                env: dict[str, str] | None = None) -> tuple[bool, str]:
    """Run a check in a fresh process, as a test cell would; ``(passed, verdict line)``.

    Args:
        check_id: the check's id.
        checks_source: the extra-checks text that defines it (hidden checks).
        env: the process's environment (default: this one's, whose ``MQKIT_*`` variables
            name the brokers).
    """
    import subprocess

    command = [sys.executable, "-m", "mqkit.grading.verdict", check_id]
    if checks_source is not None:
        command += ["--checks", "-"]
    try:
        done = subprocess.run(command, input=checks_source or "", env=env,
                              capture_output=True, text=True, timeout=CHECK_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        return False, f"✘ error  {check_id}: the check did not finish in {CHECK_TIMEOUT} s"
    line = done.stdout.strip() or done.stderr.strip()[-800:]
    return done.returncode == PASSED, line


if __name__ == "__main__":
    sys.exit(main())
