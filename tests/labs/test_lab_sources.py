"""The labs are consistent: sources, generated notebooks, checks and README agree.

No broker needed; nbval (test_notebooks.py) proves the stored outputs are real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mqkit.authoring import (
    BEGIN,
    END,
    STUB,
    build_labs,
    find_labs,
    novel_statements,
    render_notebook,
)
from mqkit.grading import checks_for_lab, get_check
from tests.labs.conftest import LABS, SANITIZE

LAB_LIST = find_labs(LABS)
IDS = [lab.name for lab in LAB_LIST]
SELF_CHECK = re.compile(r"""self_check\(\s*["']([^"']+)["']""")
PASSWORD_IN_URL = re.compile(r"(amqps?|mqtts?|https?)://[^:/@\s]+:(?!\*\*\*@)[^@\s]+@")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _stdout(cell: dict) -> str:
    return "".join(_text({"source": o.get("text", "")}) for o in cell.get("outputs", []))


def _shown(cell: dict) -> str:
    """Everything a cell's stored outputs show: stdout and the text of results."""
    results = [_text({"source": o["data"]["text/plain"]}) for o in cell.get("outputs", [])
               if o["output_type"] == "execute_result"]
    return _stdout(cell) + "".join(results)


def test_labs_00_to_03_exist() -> None:
    assert [lab.name[:2] for lab in LAB_LIST][:4] == ["00", "01", "02", "03"]


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_every_lab_has_a_student_and_a_solution_notebook(lab) -> None:
    assert lab.student.is_file(), f"missing {lab.student}: run `mqkit build-labs`"
    assert lab.solution.is_file(), f"missing {lab.solution}: run `mqkit build-labs`"
    assert lab.test_copy.is_file(), f"missing {lab.test_copy}: run `mqkit build-labs`"


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_handed_out_notebook_stores_no_output(lab) -> None:
    # Like a released nbgrader assignment: nothing shows before the student runs it.
    for cell in _cells(lab.student):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{lab.student}: stored output in {cell['id']}"
            assert cell["execution_count"] is None, f"{lab.student}: count in {cell['id']}"


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_test_copy_is_the_handed_out_notebook_plus_expected_outputs(lab) -> None:
    shipped, copy = _cells(lab.student), _cells(lab.test_copy)
    assert [_text(c) for c in shipped] == [_text(c) for c in copy]
    assert [c["metadata"] for c in shipped] == [c["metadata"] for c in copy]
    assert any(c.get("outputs") for c in copy), "the test copy compares nothing"


def test_committed_notebooks_match_their_sources() -> None:
    assert build_labs(LABS, check=True) == [], "notebooks drifted: run `mqkit build-labs`"


def test_drift_is_detected(tmp_path: Path) -> None:
    (tmp_path / "_src").mkdir()
    source = (LABS / "_src" / "00-setup.py").read_text(encoding="utf-8")
    (tmp_path / "_src" / "00-setup.py").write_text(source, encoding="utf-8")
    written = build_labs(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "00-setup.ipynb", "_test/00-setup.ipynb", "solutions/00-setup.ipynb"]
    assert build_labs(tmp_path, check=True) == []
    (tmp_path / "_src" / "00-setup.py").write_text(source + "\n# %%\nprint(1)\n")
    assert len(build_labs(tmp_path, check=True)) == 3
    (tmp_path / "_src" / "00-setup.py").rename(tmp_path / "_src" / "01-other.py")
    drifted = {p.relative_to(tmp_path).as_posix() for p in build_labs(tmp_path, check=True)}
    assert "solutions/00-setup.ipynb" in drifted  # orphaned notebooks are reported
    assert "_test/00-setup.ipynb" in drifted


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_rendering_is_deterministic(lab) -> None:
    source = lab.source.read_text(encoding="utf-8")
    assert render_notebook(source, "student", lab.name) == render_notebook(
        source, "student", lab.name)
    notebook = json.loads(render_notebook(source, "solution", lab.name))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert "jupytext" not in notebook["metadata"]


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_lab_opens_with_goals_and_time_and_ends_with_a_summary(lab) -> None:
    for path in (lab.student, lab.solution):
        markdown = [_text(c) for c in _cells(path) if c["cell_type"] == "markdown"]
        assert "Learning goals" in markdown[0]
        assert re.search(r"Estimated time:\*\* \d+ minutes", markdown[0])
        assert markdown[-1].startswith("## Summary")


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_student_notebook_has_no_solutions(lab) -> None:
    student = _cells(lab.student)
    solution = _cells(lab.solution)
    assert len(student) == len(solution)
    for s_cell, a_cell in zip(student, solution, strict=True):
        for marker in (BEGIN, END, STUB):
            assert marker not in _text(s_cell)
            assert marker not in _text(a_cell)
        if "exercise" in s_cell["metadata"].get("tags", []):
            assert "# YOUR CODE HERE" in _text(s_cell)
            assert "solution" in a_cell["metadata"]["tags"]
            assert _text(s_cell) != _text(a_cell)


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_self_checks_are_registered_and_show_their_verdict(lab) -> None:
    source = lab.source.read_text(encoding="utf-8")
    used = SELF_CHECK.findall(source)
    assert used, f"{lab.name} has no self-check"
    for check_id in used:
        assert get_check(check_id).lab == lab.name[:2]
    assert sorted(set(used)) == [c.id for c in checks_for_lab(lab.name[:2], False)]
    has_exercise = BEGIN in source or 'tags=["solution"]' in source
    student_verdicts, solution_verdicts = [], []
    for path, verdicts in ((lab.test_copy, student_verdicts),
                           (lab.solution, solution_verdicts)):
        for cell in _cells(path):
            if cell["cell_type"] == "code" and SELF_CHECK.search(_text(cell)):
                # A stored output makes nbval compare the verdict with the real one.
                assert cell["execution_count"] is not None, f"{path}: check without output"
                verdicts.append(_shown(cell))
    assert all(v.startswith("✔ passed") for v in solution_verdicts), solution_verdicts
    if has_exercise:
        assert any(v.startswith("✘ not yet") for v in student_verdicts), student_verdicts


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_cells_terminate_and_outputs_hold_no_secrets(lab) -> None:
    for path in (lab.student, lab.solution, lab.test_copy):
        for cell in _cells(path):
            code = _text(cell)
            if "start_consuming()" in code:
                assert re.search(r"call_later\(.+stop_consuming\)", code), \
                    f"{path}: unbounded start_consuming()"
            assert "while True" not in code, f"{path}: unbounded loop"
            assert not PASSWORD_IN_URL.search(_shown(cell)), f"{path}: password in output"


LECTURE_SNIPPETS = {
    "02": ["channel.queue_declare(queue='my_queue', durable=True)"],
    "03": ["channel.queue_declare(queue='my_queue', durable=True)",
           "channel.basic_publish(exchange='', routing_key='my_queue', body='Hello, world!')",
           "def callback(ch, method, properties, body):",
           "channel.basic_consume(queue='my_queue', on_message_callback=callback, auto_ack=True)",
           "channel.start_consuming()"],
}


@pytest.mark.parametrize("number", sorted(LECTURE_SNIPPETS))
def test_lecture_snippets_appear_as_written(number: str) -> None:
    (lab,) = [lab for lab in LAB_LIST if lab.name.startswith(number)]
    source = lab.source.read_text(encoding="utf-8")
    for snippet in LECTURE_SNIPPETS[number]:
        assert snippet in source


def test_labs_readme_lists_every_lab() -> None:
    readme = (LABS / "README.md").read_text(encoding="utf-8")
    for lab in LAB_LIST:
        assert f"{lab.name}.ipynb" in readme, lab.name
        assert f"solutions/{lab.name}.ipynb" in readme, lab.name


def test_sanitizer_hides_ports_passwords_and_server_names() -> None:
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8"))
    text = ("amqp://mqkit:s3cret@127.0.0.1:41234/%2F port=5672 amq.gen-Xy_9-z "
            "8f14e45f-ceea-467f-a0e6-6b8d7d4e8c1a")
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    assert text == "amqp://mqkit:***@127.0.0.1:PORT/%2F port=PORT amq.gen-NAME UUID"


#: What a lab may import from mqkit: the public API and the documented student modules.
PUBLIC_MODULES = {"mqkit", "mqkit.grading", "mqkit.grading.predict", "mqkit.widgets",
                  "mqkit.routing"}


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_labs_use_only_public_api(lab) -> None:
    import ast

    imported = set()
    for node in ast.walk(ast.parse(lab.source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mqkit"):
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names if a.name.startswith("mqkit")}
    assert imported <= PUBLIC_MODULES, f"{lab.name} imports internals: {imported - PUBLIC_MODULES}"
    used = set(re.findall(r"\bmqkit\.([a-z_]+)\b", lab.source.read_text(encoding="utf-8")))
    import mqkit

    attributes = {name for name in used if not (Path(mqkit.__file__).parent / name).exists()
                  and not (Path(mqkit.__file__).parent / f"{name}.py").exists()}
    unknown = attributes - set(mqkit.__all__)
    assert not unknown, f"{lab.name} uses mqkit.{unknown}, which is not public API"


RUN_TIMES = Path(__file__).resolve().parents[2] / "benchmarks" / "lab_times.json"


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_stated_time_follows_the_written_rule(lab) -> None:
    # Reading at 200 words a minute + the measured run time + 10 minutes per exercise
    # (mqkit.authoring.estimate_minutes); `python -m benchmarks.lab_times --record` measures.
    from mqkit.authoring import estimate_minutes, stated_minutes

    times = json.loads(RUN_TIMES.read_text())
    assert lab.name in times, f"no measured run time for {lab.name}: run benchmarks/lab_times.py"
    source = lab.source.read_text(encoding="utf-8")
    rule, stated = estimate_minutes(source, times[lab.name]), stated_minutes(source)
    assert stated is not None
    assert abs(stated - rule) <= 0.2 * rule + 0.5, f"{lab.name}: states {stated}, rule {rule:.1f}"
    readme = (LABS / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"\| {lab.name[:2]} \|[^|]*\| {stated} min \|", readme), lab.name


def test_top_readme_states_the_same_times() -> None:
    from mqkit.authoring import stated_minutes

    readme = (LABS.parent / "README.md").read_text(encoding="utf-8")
    for lab in LAB_LIST:
        stated = stated_minutes(lab.source.read_text(encoding="utf-8"))
        assert re.search(rf"\| {lab.name[:2]} \|[^|]*\| {stated} min \|", readme), lab.name


#: An exercise worth doing makes the student write at least this many statements of their own.
NOVEL_STATEMENTS_MIN = 3


@pytest.mark.parametrize("lab", LAB_LIST, ids=IDS)
def test_every_lab_has_an_exercise_worth_doing(lab) -> None:
    # Graded exercises must not be one line that the text above already spells out.
    per_exercise = novel_statements(lab.source.read_text(encoding="utf-8"))
    best = max(per_exercise, key=len, default=[])
    assert len(best) >= NOVEL_STATEMENTS_MIN, (
        f"{lab.name}: no exercise asks for {NOVEL_STATEMENTS_MIN} statements the notebook "
        f"does not already show; the best has {len(best)}: {best}")
