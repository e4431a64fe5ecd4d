"""Lab authoring: solution regions, stubs and expected outputs (no broker, no kernel)."""

from __future__ import annotations

import json

import pytest

from mqkit.authoring import render_notebook, split_expected_output, strip_solutions

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
