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
  from the code and stored as the cell's outputs in the matching notebook, with an execution
  count, so ``pytest --nbval`` compares them (after ``labs/nbval-sanitize.cfg``). Cells
  without one are stored unexecuted: nbval only checks that they run without error.

Generated notebooks are deterministic (no timestamps, sorted keys, cell ids from positions,
kernelspec ``python3``), so ``build_labs(check=True)`` detects drift exactly.

Example:
    >>> from pathlib import Path
    >>> build_labs(Path("labs"), check=True)   # doctest: +SKIP
    []
"""

from __future__ import annotations

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

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}


@dataclass(frozen=True)
class Lab:
    """One lab source and the two notebooks generated from it."""

    source: Path
    student: Path
    solution: Path

    @property
    def name(self) -> str:
        """``NN-name``, e.g. ``02-queues-durability``."""
        return self.source.stem


def find_labs(labs_dir: Path) -> list[Lab]:
    """All lab sources under ``labs_dir/_src``, sorted, with their notebook paths."""
    sources = sorted(p for p in (labs_dir / "_src").glob("*.py") if SOURCE_PATTERN.match(p.name))
    return [Lab(p, labs_dir / f"{p.stem}.ipynb", labs_dir / "solutions" / f"{p.stem}.ipynb")
            for p in sources]


def build_labs(labs_dir: Path, check: bool = False) -> list[Path]:
    """Generate the student and solution notebooks of every lab under ``labs_dir``.

    Generated notebooks whose source is gone are removed (or, with ``check``, reported).

    Args:
        labs_dir: the labs folder (holding ``_src/``).
        check: write nothing; return the notebooks that differ from what would be written.

    Returns:
        The paths written (or removed), or with ``check`` the paths that differ.
    """
    labs = find_labs(labs_dir)
    expected: dict[Path, str] = {}
    for lab in labs:
        text = lab.source.read_text(encoding="utf-8")
        expected[lab.student] = render_notebook(text, "student", lab.name)
        expected[lab.solution] = render_notebook(text, "solution", lab.name)
    generated = {*labs_dir.glob("[0-9][0-9]-*.ipynb"),
                 *(labs_dir / "solutions").glob("[0-9][0-9]-*.ipynb")}
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


def render_notebook(source: str, variant: str, name: str = "lab") -> str:
    """The notebook JSON for one variant (``student`` or ``solution``) of a lab source."""
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
            notebook.cells.append(_code_cell(cell, variant, cell_id, code_number, name))
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


def _code_cell(cell: Any, variant: str, cell_id: str, number: int, name: str) -> Any:
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
    expected = outputs.get(variant, {})
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
