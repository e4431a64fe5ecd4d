"""Lab authoring: solution regions, stubs and expected outputs (no broker, no kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mqkit.authoring import (
    novel_statements,
    render_notebook,
    split_expected_output,
    strip_solutions,
)

SOURCE = '''# %% [markdown]
# # Lab 99
# **Learning goals** ... **Estimated time:** 5 minutes.

# %%
queue = "lab99.q"
### BEGIN SOLUTION
declare(queue)
### END SOLUTION
# Expected output (solution):
# declared

# %%
for item in items:
    ### BEGIN SOLUTION
    ack(item)
    ### END SOLUTION

# %%
### BEGIN SOLUTION
# STUB: answer = None
answer = 42
### END SOLUTION

# %% tags=["solution"]
secret()

# %% [markdown] tags=["solution"]
# The answer is 42.

# %%
print("shared")
# Expected output:
# shared
#
# end

# %%
verdict()
# Expected result (student):
# not yet
'''


def _notebook(variant: str) -> dict:
    return json.loads(render_notebook(SOURCE, variant, "99-test"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_student_notebook_gets_stubs_that_still_run() -> None:
    cells = _notebook("student")["cells"]
    assert _source(cells[1]) == 'queue = "lab99.q"\n# YOUR CODE HERE'
    assert _source(cells[2]) == "for item in items:\n    pass  # YOUR CODE HERE"
    assert _source(cells[3]) == "# YOUR CODE HERE\nanswer = None"
    assert _source(cells[4]) == "# YOUR CODE HERE"
    assert _source(cells[5]) == "*Your answer here.*"
    for cell in cells[1:4]:
        compile(_source(cell), "cell", "exec")  # every stub is valid Python
    assert [c["metadata"].get("tags") for c in cells[1:6]] == [["exercise"]] * 5


def test_solution_notebook_keeps_the_code_without_markers() -> None:
    cells = _notebook("solution")["cells"]
    assert _source(cells[1]) == 'queue = "lab99.q"\ndeclare(queue)'
    assert _source(cells[2]) == "for item in items:\n    ack(item)"
    assert _source(cells[3]) == "answer = 42"
    assert _source(cells[4]) == "secret()"
    assert _source(cells[5]) == "The answer is 42."
    assert [c["metadata"].get("tags") for c in cells[1:6]] == [["solution"]] * 5


def test_expected_outputs_become_stored_stdout_per_variant() -> None:
    student, solution = _notebook("student")["cells"], _notebook("solution")["cells"]
    assert student[1]["outputs"] == []
    assert student[1]["execution_count"] is None
    assert solution[1]["outputs"] == [{"name": "stdout", "output_type": "stream",
                                       "text": ["declared\n"]}]
    assert solution[1]["execution_count"] == 1
    for cells in (student, solution):
        assert "".join(cells[6]["outputs"][0]["text"]) == "shared\n\nend\n"
        assert _source(cells[6]) == 'print("shared")'
        assert cells[2]["execution_count"] is None


def test_expected_results_become_execute_results() -> None:
    student, solution = _notebook("student")["cells"], _notebook("solution")["cells"]
    assert student[7]["outputs"] == [{"data": {"text/plain": ["not yet"]}, "execution_count": 6,
                                      "metadata": {}, "output_type": "execute_result"}]
    assert student[7]["execution_count"] == 6  # the sixth code cell
    assert solution[7]["outputs"] == []
    assert solution[7]["execution_count"] is None


def test_notebook_metadata_is_fixed() -> None:
    notebook = _notebook("student")
    assert notebook["metadata"] == {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"}}
    assert [c["id"] for c in notebook["cells"][:2]] == ["99-000", "99-001"]


@pytest.mark.parametrize("code", [
    "### BEGIN SOLUTION\nx = 1",
    "x = 1\n### END SOLUTION",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
])
def test_unbalanced_markers_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="SOLUTION"):
        strip_solutions(code, "student")


def test_expected_output_must_end_the_cell() -> None:
    with pytest.raises(ValueError, match="must end the cell"):
        split_expected_output("print(1)\n# Expected output:\n# 1\nprint(2)")
    with pytest.raises(ValueError, match="two expected outputs"):
        split_expected_output("x\n# Expected output:\n# 1\n# Expected output (student):\n# 2")


# -- nothing given away ----------------------------------------------------------------------

LABS_DIR = Path(__file__).resolve().parents[2] / "labs"


def test_build_labs_refuses_a_folder_without_sources(tmp_path):
    from mqkit.authoring import build_labs
    from mqkit.exceptions import ConfigError

    with pytest.raises(ConfigError, match="No lab sources") as info:
        build_labs(tmp_path, check=True)
    assert "--labs" in str(info.value)


def test_build_labs_check_exits_non_zero_from_the_wrong_folder(tmp_path):
    from mqkit.cli import main

    assert main(["build-labs", "--check", "--labs", str(tmp_path)]) == 1


def test_solution_lines_are_what_the_solution_adds():
    from mqkit.authoring import normalize_line, solution_lines

    source = ("# %%\nx = 1\n### BEGIN SOLUTION\nchannel.queue_bind('q', 'ex', routing_key='a.#')\n"
              "ok = True\n### END SOLUTION\n")
    lines = solution_lines(source)
    assert normalize_line('channel.queue_bind("q", "ex", routing_key="a.#")') in lines
    assert "ok=True" not in lines  # shorter than 12 characters


def test_release_holds_no_solution(tmp_path):
    import json

    from mqkit.authoring import find_labs, normalize_line, release, solution_lines

    out = tmp_path / "release"
    written = release(LABS_DIR, out, requirement="mqkit==9.9")
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"README.md", "requirements.txt", "binder/requirements.txt", "binder/postBuild",
            "binder/apt.txt", "binder/start", "binder/runtime.txt"} <= names
    assert not any("solution" in p.relative_to(out).as_posix().lower() for p in out.rglob("*"))
    assert (out / "binder" / "requirements.txt").read_text() == "mqkit==9.9\n"
    assert "set -euo pipefail" in (out / "binder" / "postBuild").read_text()
    assert "pip install -e" not in (out / "binder" / "postBuild").read_text()
    leaks = set().union(*(solution_lines(lab.source.read_text()) for lab in find_labs(LABS_DIR)))
    assert leaks, "the labs have exercises"
    for lab in find_labs(LABS_DIR):
        notebook = json.loads((out / "labs" / f"{lab.name}.ipynb").read_text())
        assert all(not c.get("outputs") for c in notebook["cells"])
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".ipynb":
            text = normalize_line(path.read_text())
            assert not [line for line in leaks if line in text], path
    # A later release replaces the earlier one; an unrelated folder is never overwritten.
    assert release(LABS_DIR, out) == written
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("mine")
    from mqkit.exceptions import ConfigError

    with pytest.raises(ConfigError, match="not empty"):
        release(LABS_DIR, stranger)


NOVELTY_SOURCE = '''# %% [markdown]
# Ack with `channel.basic_ack(delivery_tag=tag)`.

# %%
channel.queue_declare(queue="q", durable=True)

# %%
for tag in tags:
    ### BEGIN SOLUTION
    channel.queue_declare(queue='q', durable=True)
    channel.basic_ack(delivery_tag=tag)
    if tag > 3:
        channel.basic_nack(delivery_tag=tag, requeue=False)
        break
    ### END SOLUTION
'''


def test_novel_statements_skip_what_the_notebook_already_shows() -> None:
    # The declare is in an earlier cell (other quotes), the ack in the text: neither counts;
    # the `if` and the nack inside it do, `break` never does.
    (novel,) = novel_statements(NOVELTY_SOURCE)
    assert novel == [
        "if tag > 3:\n    channel.basic_nack(delivery_tag=tag, requeue=False)\n    break",
        "channel.basic_nack(delivery_tag=tag, requeue=False)",
    ]
