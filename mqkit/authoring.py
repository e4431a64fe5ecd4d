"""Lab sources -> student and solution notebooks.

Each lab has one hand-edited source, ``labs/_src/NN-name.py`` in jupytext's percent format.
:func:`build_labs` turns it into the student notebook ``labs/NN-name.ipynb`` (exercise
solutions replaced by stubs) and the solution notebook ``labs/solutions/NN-name.ipynb``.
The conventions (documented for instructors in ``labs/_src/README.md``):

* **Solution regions.** Lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are
  kept in the solution notebook and replaced by ``# YOUR CODE HERE`` in the student notebook
  (``pass  # YOUR CODE HERE`` when indented, so the cell still runs). Lines inside a region
  that start with ``# STUB:`` appear, uncommented, only in the student notebook (a
  placeholder such as ``answer = None``).
* **Solution cells.** A cell tagged ``solution`` is replaced as a whole (code: ``# YOUR CODE
  HERE``; markdown: an answer prompt).
* **Expected outputs.** A code cell may end with comment blocks that start with
  ``# Expected output:`` (what the cell prints) or ``# Expected result:`` (how its last
  expression displays, e.g. a self-check verdict), each optionally narrowed to one notebook:
  ``# Expected output (solution):``, ``# Expected result (student):``. The blocks are removed
  from the code and stored as the cell's outputs, with an execution count, so
  ``pytest --nbval`` compares them (after ``labs/nbval-sanitize.cfg``). Cells without one are
  stored unexecuted: nbval only checks that they run without error.

Three notebooks come from each source:

* ``labs/NN-name.ipynb``, the **student** notebook handed out: exercises blank, and like a
  released nbgrader assignment no stored output and no execution count, so nothing (not a
  failing self-check's hint, not a prediction table) shows an answer before the student runs
  it;
* ``labs/solutions/NN-name.ipynb``, the **solution** notebook, with its expected outputs;
* ``labs/_test/NN-name.ipynb``, a **test-only** student copy with the student's expected
  outputs, which nbval runs so the student path is compared and not just executed.

:func:`release` writes what an instructor publishes to students: the student notebooks,
Binder files and the requirement on mqkit, with no solution anywhere.

Generated notebooks are deterministic (no timestamps, sorted keys, cell ids from positions,
kernelspec ``python3``), so ``build_labs(check=True)`` detects drift exactly.

Example:
    >>> from pathlib import Path
    >>> build_labs(Path("labs"), check=True)   # doctest: +SKIP
    []
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = "# STUB:"
STUDENT_PLACEHOLDER = "# YOUR CODE HERE"
MARKDOWN_PLACEHOLDER = "*Your answer here.*"
#: Lab sources are named like ``03-publish-consume.py``.
SOURCE_PATTERN = re.compile(r"^\d\d-[a-z0-9][a-z0-9-]*\.py$")
_EXPECTED = re.compile(r"^# Expected (output|result)(?: \((solution|student)\))?:\s*$")
VARIANTS = ("student", "solution")
#: Where the test-only student copies (with expected outputs) go, inside the labs folder.
TEST_DIR = "_test"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}


@dataclass(frozen=True)
class Lab:
    """One lab source and the notebooks generated from it."""

    source: Path
    student: Path
    solution: Path
    test_copy: Path

    @property
    def name(self) -> str:
        """``NN-name``, e.g. ``02-queues-durability``."""
        return self.source.stem


def find_labs(labs_dir: Path) -> list[Lab]:
    """All lab sources under ``labs_dir/_src``, sorted, with their notebook paths."""
    sources = sorted(p for p in (labs_dir / "_src").glob("*.py") if SOURCE_PATTERN.match(p.name))
    return [Lab(p, labs_dir / f"{p.stem}.ipynb", labs_dir / "solutions" / f"{p.stem}.ipynb",
                labs_dir / TEST_DIR / f"{p.stem}.ipynb")
            for p in sources]


def require_labs(labs_dir: Path) -> list[Lab]:
    """:func:`find_labs`, refusing a folder with no lab sources.

    Raises:
        ConfigError: ``labs_dir/_src`` holds no ``NN-name.py`` source (a wrong folder or
            ``--labs``): checking or building nothing must not look like success.
    """
    labs = find_labs(labs_dir)
    if not labs:
        from mqkit.exceptions import ConfigError

        raise ConfigError(f"No lab sources in {labs_dir / '_src'} (looked for NN-name.py).",
                          hint="Run from the mqkit checkout, or pass --labs the folder that "
                               "holds _src/.")
    return labs


def build_labs(labs_dir: Path, check: bool = False) -> list[Path]:
    """Generate the student and solution notebooks of every lab under ``labs_dir``.

    Generated notebooks whose source is gone are removed (or, with ``check``, reported).

    Args:
        labs_dir: the labs folder (holding ``_src/``).
        check: write nothing; return the notebooks that differ from what would be written.

    Returns:
        The paths written (or removed), or with ``check`` the paths that differ.

    Raises:
        ConfigError: there are no lab sources under ``labs_dir``.
    """
    labs = require_labs(labs_dir)
    expected: dict[Path, str] = {}
    for lab in labs:
        text = lab.source.read_text(encoding="utf-8")
        expected[lab.student] = render_notebook(text, "student", lab.name, with_outputs=False)
        expected[lab.solution] = render_notebook(text, "solution", lab.name)
        expected[lab.test_copy] = render_notebook(text, "student", lab.name)
    generated = {*labs_dir.glob("[0-9][0-9]-*.ipynb"),
                 *(labs_dir / "solutions").glob("[0-9][0-9]-*.ipynb"),
                 *(labs_dir / TEST_DIR).glob("[0-9][0-9]-*.ipynb")}
    changed: list[Path] = []
    for path, content in expected.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        changed.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            log.debug("wrote %s", path)
    for path in sorted(generated - set(expected)):
        changed.append(path)
        if not check:
            path.unlink()
            log.debug("removed %s: its source is gone", path)
    return changed


def render_notebook(source: str, variant: str, name: str = "lab", *,
                    with_outputs: bool = True) -> str:
    """The notebook JSON for one variant (``student`` or ``solution``) of a lab source.

    Args:
        source: the lab source (jupytext percent format).
        variant: ``student`` or ``solution``.
        name: the lab's name (``NN-name``), for cell ids and messages.
        with_outputs: store the expected outputs; ``False`` for the handed-out notebook.
    """
    import nbformat

    from mqkit.optional import import_optional

    jupytext = import_optional("jupytext", "building the labs")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    parsed = jupytext.reads(source, fmt="py:percent")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    code_number = 0
    for index, cell in enumerate(parsed.cells):
        cell_id = f"{name[:2]}-{index:03d}"
        if cell.cell_type == "code":
            code_number += 1
            notebook.cells.append(_code_cell(cell, variant, cell_id, code_number, name,
                                             with_outputs))
        elif cell.cell_type == "markdown":
            tags = list(cell.metadata.get("tags", []))
            text = cell.source
            if "solution" in tags and variant == "student":
                text = MARKDOWN_PLACEHOLDER
            new = nbformat.v4.new_markdown_cell(text, id=cell_id)
            _set_tags(new, _variant_tags(tags, variant, "solution" in tags))
            notebook.cells.append(new)
        else:
            notebook.cells.append(nbformat.v4.new_raw_cell(cell.source, id=cell_id))
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def _code_cell(cell: Any, variant: str, cell_id: str, number: int, name: str,
               with_outputs: bool) -> Any:
    import nbformat

    tags = list(cell.metadata.get("tags", []))
    code, outputs = split_expected_output(cell.source, where=f"{name} cell {cell_id}")
    is_exercise = "solution" in tags or BEGIN in code
    if "solution" in tags:
        code = code if variant == "solution" else STUDENT_PLACEHOLDER
    else:
        code = strip_solutions(code, variant, where=f"{name} cell {cell_id}")
    new = nbformat.v4.new_code_cell(code, id=cell_id)
    _set_tags(new, _variant_tags(tags, variant, is_exercise))
    expected = outputs.get(variant, {}) if with_outputs else {}
    if expected:
        new.execution_count = number
    if "output" in expected:
        new.outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                  text=expected["output"]))
    if "result" in expected:
        new.outputs.append(nbformat.v4.new_output(
            "execute_result", data={"text/plain": expected["result"].rstrip("\n")},
            execution_count=number))
    return new


def _variant_tags(tags: list[str], variant: str, is_exercise: bool) -> list[str]:
    """Solution notebooks tag exercise cells ``solution``; student notebooks ``exercise``."""
    kept = [t for t in tags if t not in ("solution", "exercise")]
    if is_exercise:
        kept.append("solution" if variant == "solution" else "exercise")
    return kept


def _set_tags(cell: Any, tags: list[str]) -> None:
    if tags:
        cell.metadata["tags"] = tags


def split_expected_output(
    code: str, where: str = "cell"
) -> tuple[str, dict[str, dict[str, str]]]:
    """Split a cell's trailing ``# Expected output`` / ``# Expected result`` blocks from its code.

    Returns:
        The code without the blocks, and per variant the expected ``output`` (stdout) and
        ``result`` (the last expression's text), each ending with a newline.

    Raises:
        ValueError: a line after a marker is not a comment, or a block is given twice.
    """
    lines = code.split("\n")
    start = next((i for i, line in enumerate(lines) if _EXPECTED.match(line)), None)
    if start is None:
        return code, {}
    blocks: dict[tuple[str, str], list[str]] = {}
    targets: list[tuple[str, str]] = []
    for line in lines[start:]:
        marker = _EXPECTED.match(line)
        if marker:
            kind, only = marker.groups()
            targets = [(variant, kind) for variant in ((only,) if only else VARIANTS)]
            for target in targets:
                if target in blocks:
                    raise ValueError(f"{where}: two expected {kind}s for the {target[0]} "
                                     "notebook")
                blocks[target] = []
        elif line == "#" or line.startswith("# "):
            for target in targets:
                blocks[target].append(line[2:])
        else:
            raise ValueError(f"{where}: expected-output blocks must end the cell and hold only "
                             f"'# ' comment lines, found {line!r}")
    body = "\n".join(lines[:start]).rstrip("\n")
    expected: dict[str, dict[str, str]] = {}
    for (variant, kind), text in blocks.items():
        expected.setdefault(variant, {})[kind] = "\n".join(text).rstrip("\n") + "\n"
    return body, expected


def strip_solutions(code: str, variant: str, where: str = "cell") -> str:
    """Resolve ``### BEGIN/END SOLUTION`` regions for one variant.

    Raises:
        ValueError: unbalanced markers.
    """
    result: list[str] = []
    region: list[str] | None = None
    indent = ""
    for line in code.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN:
            if region is not None:
                raise ValueError(f"{where}: nested {BEGIN}")
            region, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if region is None:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            result += (_drop_stub_lines(region) if variant == "solution"
                       else _stub(region, indent))
            region = None
        elif region is not None:
            region.append(line)
        else:
            result.append(line)
    if region is not None:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    return "\n".join(result)


def _stub(region: list[str], indent: str) -> list[str]:
    """The student's version of a solution region: a placeholder that still runs."""
    stubs = [f"{indent}{line.strip()[len(STUB):].strip()}" for line in region
             if line.strip().startswith(STUB)]
    if stubs:
        return [f"{indent}{STUDENT_PLACEHOLDER}", *stubs]
    return [f"{indent}pass  {STUDENT_PLACEHOLDER}" if indent else STUDENT_PLACEHOLDER]


def _drop_stub_lines(region: list[str]) -> list[str]:
    return [line for line in region if not line.strip().startswith(STUB)]


# -- how long a lab takes --------------------------------------------------------------------

#: The rule behind every lab's "Estimated time": reading, running, and doing the exercises.
READING_WORDS_PER_MINUTE = 200
MINUTES_PER_EXERCISE = 10
_STATED = re.compile(r"\*\*Estimated time:\*\* (\d+) minutes")


def lab_workload(source: str) -> tuple[int, int]:
    """The words a student reads and the number of exercises in a lab.

    Text counts its words; code counts its names and numbers (``channel.queue_declare(``
    is two words to read, not one), as a reader takes them in.
    """
    import json

    notebook = json.loads(render_notebook(source, "student", "lab", with_outputs=False))
    words = 0
    for cell in notebook["cells"]:
        text = _source(cell)
        words += len(re.findall(r"\w+", text)) if cell["cell_type"] == "code" else len(
            text.split())
    exercises = sum("exercise" in cell["metadata"].get("tags", [])
                    for cell in notebook["cells"])
    return words, exercises


def estimate_minutes(source: str, run_seconds: float) -> float:
    """A lab's time by the written rule: reading + running its cells + its exercises.

    Reading is at :data:`READING_WORDS_PER_MINUTE`, the run time is measured
    (``benchmarks/lab_times.py``), and every exercise counts :data:`MINUTES_PER_EXERCISE`.
    """
    words, exercises = lab_workload(source)
    return (words / READING_WORDS_PER_MINUTE + run_seconds / 60
            + exercises * MINUTES_PER_EXERCISE)


def rounded_minutes(minutes: float) -> int:
    """What a lab states: to the nearest 5 minutes from 10 up, else to the minute."""
    return max(1, round(minutes)) if minutes < 10 else 5 * round(minutes / 5)


def stated_minutes(source: str) -> int | None:
    """The ``**Estimated time:** N minutes`` a lab states in its opening cell."""
    found = _STATED.search(source)
    return int(found.group(1)) if found else None


# -- what a student could see ----------------------------------------------------------------

#: A solution line is one with at least this many non-blank characters.
SOLUTION_LINE_MIN = 12


def normalize_line(text: str) -> str:
    """A line with whitespace removed and quotes unified, for comparing code with output."""
    return re.sub(r"\s+", "", text).replace("'", '"')


def solution_lines(source: str) -> set[str]:
    """The normalized lines the solution adds to exercise cells (at least 12 characters).

    These are what a student must never see before writing them: the leak test looks for
    each in every output of an untouched student notebook.
    """
    import json

    solution = json.loads(render_notebook(source, "solution", "lab", with_outputs=False))
    student = json.loads(render_notebook(source, "student", "lab", with_outputs=False))
    found: set[str] = set()
    for answer, blank in zip(solution["cells"], student["cells"], strict=True):
        if "solution" not in answer["metadata"].get("tags", []):
            continue
        given = {normalize_line(line) for line in _source(blank).splitlines()}
        for line in _source(answer).splitlines():
            normal = normalize_line(line)
            if len(normal) >= SOLUTION_LINE_MIN and normal not in given:
                found.add(normal)
    return found


#: Statements that are never evidence of work on their own.
_TRIVIAL_STATEMENTS = ("Pass", "Break", "Continue")


def exercise_regions(source: str) -> list[str]:
    """The code of every solution region (or solution cell) of a lab source, dedented."""
    import textwrap

    from mqkit.optional import import_optional

    jupytext = import_optional("jupytext", "reading the labs")
    regions: list[str] = []
    for cell in jupytext.reads(source, fmt="py:percent").cells:
        if cell.cell_type != "code":
            continue
        code, _ = split_expected_output(cell.source)
        if "solution" in cell.metadata.get("tags", []):
            regions.append(code)
            continue
        region: list[str] | None = None
        for line in code.split("\n"):
            if line.strip() == BEGIN:
                region = []
            elif line.strip() == END and region is not None:
                regions.append(textwrap.dedent("\n".join(_drop_stub_lines(region))))
                region = None
            elif region is not None:
                region.append(line)
    return regions


def novel_statements(source: str) -> list[list[str]]:
    """Per exercise, the statements a student must write that the student notebook never shows.

    A statement (nested ones count: a loop and each statement in it) is *novel* when its
    text, whitespace removed and quotes unified, appears nowhere in the student notebook:
    not in an earlier cell, not in the text. ``pass``, ``break`` and ``continue`` never
    count. An exercise worth doing has at least three.
    """
    import ast
    import json

    student = json.loads(render_notebook(source, "student", "lab", with_outputs=False))
    shown = []
    for cell in student["cells"]:
        text = _source(cell)
        shown.append(normalize_line(text))
        if cell["cell_type"] == "code":
            with contextlib.suppress(SyntaxError):  # a magic: the raw text above is enough
                shown.append(normalize_line(ast.unparse(ast.parse(text))))
    everything = "\n".join(shown)
    found: list[list[str]] = []
    for region in exercise_regions(source):
        try:
            tree = ast.parse(region)
        except SyntaxError:
            found.append([])
            continue
        statements = [ast.unparse(node) for node in ast.walk(tree)
                      if isinstance(node, ast.stmt)
                      and type(node).__name__ not in _TRIVIAL_STATEMENTS]
        found.append([s for s in statements if normalize_line(s) not in everything])
    return found


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


# -- the student release ---------------------------------------------------------------------

#: Written into a release so a later release may replace it (and nothing else is overwritten).
RELEASE_MARKER = ".mqkit-release"
_BINDER_COPIED = ("apt.txt", "runtime.txt", "start")


def release(labs_dir: Path, out_dir: Path, *, requirement: str | None = None) -> list[Path]:
    """Write what an instructor publishes to students: no solution anywhere in it.

    ``out_dir`` gets the student notebooks (``labs/``, no outputs), a students' README, the
    Binder files (``binder/``: apt packages, runtime, start, and a ``requirements.txt`` with
    the requirement on mqkit instead of the repository's editable install), and a top-level
    ``requirements.txt`` for a laptop.

    Args:
        labs_dir: the labs folder (holding ``_src/``); ``binder/`` is taken from beside it.
        out_dir: where to write; empty, missing, or an earlier release.
        requirement: the pip requirement on mqkit (default: this version of mqkit).

    Returns:
        The files written.

    Raises:
        ConfigError: no lab sources, no ``binder/`` beside the labs, an ``out_dir`` that is
            not empty and not an earlier release, or a solution line found in the release.
    """
    import shutil

    from mqkit import __version__
    from mqkit.exceptions import ConfigError

    labs = require_labs(labs_dir)
    binder = labs_dir.parent / "binder"
    if not all((binder / name).is_file() for name in _BINDER_COPIED):
        raise ConfigError(f"No Binder files ({', '.join(_BINDER_COPIED)}) in {binder}.",
                          hint="Run from the mqkit checkout (it has binder/).")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / RELEASE_MARKER).exists():
            raise ConfigError(f"{out_dir} is not empty and holds no earlier release.",
                              hint="Choose a new folder, or empty this one.")
        for stale in ("labs", "binder"):
            shutil.rmtree(out_dir / stale, ignore_errors=True)
    requirement = requirement or f"mqkit=={__version__}"
    files: dict[Path, str] = {out_dir / RELEASE_MARKER: "written by `mqkit build-labs --release`\n"}
    leaks: set[str] = set()
    rows = []
    for lab in labs:
        source = lab.source.read_text(encoding="utf-8")
        files[out_dir / "labs" / f"{lab.name}.ipynb"] = render_notebook(
            source, "student", lab.name, with_outputs=False)
        leaks |= solution_lines(source)
        rows.append(f"| {lab.name[:2]} | [{lab.name}.ipynb](labs/{lab.name}.ipynb) |")
    for name in _BINDER_COPIED:
        files[out_dir / "binder" / name] = (binder / name).read_text(encoding="utf-8")
    files[out_dir / "binder" / "requirements.txt"] = requirement + "\n"
    files[out_dir / "binder" / "postBuild"] = (
        "#!/usr/bin/env bash\n# Binder build step: fail the build now, not in a student's first "
        "cell,\n# if the brokers cannot run here.\nset -euo pipefail\nmqkit doctor\n")
    files[out_dir / "requirements.txt"] = requirement + "\n"
    files[out_dir / "README.md"] = _RELEASE_README.format(rows="\n".join(rows))
    for path, text in files.items():
        # The last guard: a stored output, or a solution line in any other file, stops the
        # release before anything is written.
        if path.suffix == ".ipynb":
            if '"outputs": []' not in text or '"output_type"' in text:
                raise ConfigError(f"{path.name} would ship with stored outputs.",
                                  hint="This is a bug in mqkit's lab builder.")
            continue
        found = [line for line in leaks if line in normalize_line(text)]
        if found:
            raise ConfigError(f"{path.name} would show a solution line: {found[0]!r}.",
                              hint="Move it into a solution region of the lab source.")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if path.name in ("start", "postBuild"):
            path.chmod(0o755)
    return sorted(files)


_RELEASE_README = """# Messaging labs

Notebooks that teach messaging with real brokers: RabbitMQ (AMQP 0-9-1, with pika) and
Mosquitto (MQTT, with paho-mqtt). The `mqkit` package starts the brokers for you.

On your own machine (Python 3.11+; Docker, or `apt-get install rabbitmq-server mosquitto`):

```sh
pip install -r requirements.txt
mqkit lab          # starts the brokers and JupyterLab on labs/
```

On Binder, open this repository with the badge your instructor gives you.

| lab | notebook |
|---|---|
{rows}

Run each lab top to bottom; the self-check cells tell you when an exercise is done.
"""
