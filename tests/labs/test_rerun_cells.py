"""After Run All, any cell can run again: top to bottom, then bottom to top.

A student's first move is Run All; the next is re-running a cell to try something. Every
code cell of every solution notebook is re-run once on its own after Run All, in order and
then in reverse. None may fail: a cell either works again, or prints in one line what to run
first. (Widgets and connections stay open after Run All, so re-running never meets a
connection a later cell closed.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mqkit.authoring import find_labs
from tests.labs.conftest import LABS, NOTEBOOK_TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.labs]

LAB_LIST = find_labs(LABS)


@pytest.mark.timeout(3 * NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("lab", LAB_LIST, ids=[lab.name for lab in LAB_LIST])
def test_every_cell_runs_again_after_run_all(lab, lab_brokers, lab_state_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("MQKIT_STATE_DIR", str(lab_state_dir))
    monkeypatch.setenv("MQKIT_BACKEND", "process")
    notebook = nbformat.read(lab.solution, as_version=4)
    client = NotebookClient(notebook, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(lab.solution.parent)}})
    code = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    failures = []
    with client.setup_kernel():
        for index in code:  # Run All
            client.execute_cell(notebook.cells[index], index)
        for direction, order in (("down", code), ("up", code[::-1])):
            for index in order:
                cell = notebook.cells[index]
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError:
                    error = next(o for o in cell.outputs if o.output_type == "error")
                    failures.append(f"{direction} {cell.id}: {error.ename}: "
                                    f"{str(error.evalue).splitlines()[0][:200]}")
    assert not failures, f"{lab.solution.name}: cells that fail when run again:\n" + "\n".join(
        failures)
