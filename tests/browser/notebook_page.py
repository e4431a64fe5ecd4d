"""A notebook in JupyterLab, driven through Playwright: open it, Run All, read what it shows.

The page must come from a :func:`tests.browser.jupyter_server.jupyter_lab` started with
``notebook_settings=ALL_CELLS_IN_DOM``: JupyterLab otherwise attaches only the cells near the
viewport, and a long lab's prompts and outputs could not be read.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from tests.browser.jupyter_server import JupyterServer

#: The notebook tracker settings that keep every cell in the DOM.
ALL_CELLS_IN_DOM = {"windowingMode": "none"}
#: The notebook shown in the main area.
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
#: JupyterLab renders stderr and error outputs (tracebacks) with this MIME type.
STDERR_MIME = "application/vnd.jupyter.stderr"
IDLE = "Python 3 (ipykernel) | Idle"

#: A widget's output: JupyterLab marks every other output with its MIME type, not a widget's
#: (whose view is removed and the output hidden when the widget is closed).
WIDGET_OUTPUT = ".jp-OutputArea-output:not([data-mime-type])"

# Per code cell: its prompt, its stderr and error outputs (widgets' nested Output areas
# included), and whether each widget it displays is still drawn.
_READ_CELLS = """(panel) => [...panel.querySelectorAll('.jp-CodeCell')].map((cell) => {
  const prompt = cell.querySelector('.jp-InputArea-prompt');
  const own = (o) => o.closest('.jp-CodeCell') === cell;
  const stderr = [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="STDERR"]')]
    .filter(own).map((o) => o.innerText);
  const widgets = [...cell.querySelectorAll('WIDGET')]
    .filter((o) => own(o) && !o.parentElement.closest('.jupyter-widgets'))
    .map((o) => {
      const view = o.querySelector('.jupyter-widgets');
      return Boolean(view) && view.getBoundingClientRect().height > 0
        && !o.innerText.includes('Error displaying widget');
    });
  return {prompt: prompt ? prompt.innerText.trim() : '', stderr, widgets};
})""".replace("STDERR", STDERR_MIME).replace("WIDGET", WIDGET_OUTPUT)

# Done: nothing queued or running ([*]) and something ran; a cell that failed stops Run All
# and leaves the cells after it unrun ([ ]), which read_cells reports.
_RUN_DONE = """(panel) => {
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .map((p) => p.innerText);
  return !prompts.some((p) => p.includes('*')) && prompts.some((p) => /\\[\\d+\\]/.test(p));
}"""


@dataclass
class CellState:
    """What a code cell shows after a run.

    Attributes:
        number: the code cell's position among the notebook's code cells, from 1.
        prompt: ``[12]:`` once run, ``[*]:`` while queued or running, ``[ ]:`` never run.
        stderr: the text of its stderr and error outputs.
        widgets: per widget it displays, whether its view is still drawn.
        should_run: False for an empty cell (JupyterLab does not send it to the kernel).
    """

    number: int
    prompt: str
    stderr: list[str] = field(default_factory=list)
    widgets: list[bool] = field(default_factory=list)
    should_run: bool = True

    @property
    def label(self) -> str:
        """``code cell 5 [5]``: the cell for a message."""
        return f"code cell {self.number} {self.prompt.rstrip(':')}"

    @property
    def has_run(self) -> bool:
        """True when the prompt holds an execution count."""
        return any(ch.isdigit() for ch in self.prompt)


def fresh_copy(source: Path, target: Path) -> dict[str, Any]:
    """Copy a notebook without outputs, execution counts or saved widget state.

    A solution notebook stores outputs (for nbval): without them, a prompt with a number
    can only come from this run. Returns the copied notebook.
    """
    notebook = json.loads(source.read_text(encoding="utf-8"))
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return notebook


def code_cells_that_run(notebook: dict[str, Any]) -> list[bool]:
    """Per code cell, whether Run All executes it (JupyterLab skips empty cells)."""
    return ["".join(cell["source"]).strip() != "" for cell in notebook["cells"]
            if cell["cell_type"] == "code"]


def open_notebook(page: Page, server: JupyterServer, path: str, timeout: float) -> Locator:
    """Open ``path`` in a workspace of its own and wait until its kernel is idle.

    A new workspace restores no notebook a previous test left open.
    """
    from playwright.sync_api import expect

    workspace = f"test-{uuid.uuid4().hex[:8]}"
    page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{quote(path)}"
              f"?token={server.token}")
    notebook = page.locator(NOTEBOOK)
    expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=timeout)
    # Run only once the kernel is up: cells queued while it starts can be dropped.
    expect(page.get_by_text(IDLE)).to_be_visible(timeout=timeout)
    return notebook


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, through the menu as a student would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def wait_until_run_done(page: Page, notebook: Locator, timeout: float) -> None:
    """Wait until no cell is queued or running and the kernel is idle."""
    from playwright.sync_api import expect

    page.wait_for_function(_RUN_DONE, arg=notebook.element_handle(), polling=500,
                           timeout=timeout)
    expect(page.get_by_text(IDLE)).to_be_visible(timeout=timeout)


def read_cells(notebook: Locator, should_run: list[bool]) -> list[CellState]:
    """Every code cell's state; ``should_run`` from :func:`code_cells_that_run`.

    Raises:
        AssertionError: the page shows another number of code cells than the file holds.
    """
    shown = notebook.evaluate(_READ_CELLS)
    assert len(shown) == len(should_run), (
        f"the page shows {len(shown)} code cells, the notebook holds {len(should_run)}")
    return [CellState(number, state["prompt"], state["stderr"], state["widgets"], runs)
            for number, (state, runs) in enumerate(zip(shown, should_run, strict=True),
                                                   start=1)]
