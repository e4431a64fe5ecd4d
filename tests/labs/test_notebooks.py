"""Every lab runs under nbval against real brokers, on the student and the solution path.

nbval compares the outputs stored in a notebook (the ``# Expected output`` blocks of the
lab sources: received messages, check results) after ``labs/nbval-sanitize.cfg``, and
checks that every other cell runs without error. The handed-out student notebook stores no
output, so the student path runs from its test-only copy (``labs/_test/``), which holds the
student's expected outputs; the copy's code is the handed-out notebook's, cell for cell.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mqkit.authoring import find_labs, render_notebook
from tests.labs.conftest import LABS, run_nbval

pytestmark = [pytest.mark.integration, pytest.mark.labs]

NOTEBOOKS = [path for lab in find_labs(LABS) for path in (lab.test_copy, lab.solution)]


@pytest.mark.parametrize("notebook", NOTEBOOKS,
                         ids=[str(p.relative_to(LABS)) for p in NOTEBOOKS])
def test_notebook_passes_nbval(notebook: Path, lab_brokers, lab_state_dir: Path) -> None:
    result = run_nbval(notebook, lab_state_dir)
    assert result.returncode == 0, (
        f"nbval failed on {notebook.relative_to(LABS.parent)}:\n{result.stdout}\n"
        f"{result.stderr}")
    assert " passed" in result.stdout


def test_nbval_catches_a_wrong_expected_output(lab_brokers, lab_state_dir: Path,
                                               tmp_path: Path) -> None:
    """The harness can fail: a notebook whose stored output is wrong does not pass."""
    source = (LABS / "_src" / "00-setup.py").read_text(encoding="utf-8")
    wrong = source.replace("# rabbitmq is up", "# rabbitmq is DOWN")
    assert wrong != source
    notebook = tmp_path / "00-wrong.ipynb"
    notebook.write_text(render_notebook(wrong, "solution", "00-wrong"), encoding="utf-8")
    result = run_nbval(notebook, lab_state_dir)
    assert result.returncode != 0
    assert "Cell outputs differ" in result.stdout
