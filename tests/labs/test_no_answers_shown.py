"""An untouched student notebook, run headless, shows no solution line in any output.

A solution line is one the solution adds to an exercise cell, with at least 12 non-blank
characters, compared with whitespace and quote style normalised
(:func:`mqkit.authoring.solution_lines`). Every MIME type counts: stream text, plain text,
HTML, JSON, and the widget state a front end would save.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mqkit.authoring import find_labs, normalize_line, solution_lines
from tests.labs.conftest import LABS, NOTEBOOK_TIMEOUT

LAB_LIST = find_labs(LABS)


def everything_shown(notebook: dict[str, Any]) -> str:
    """All a reader could see in a run notebook's outputs and saved widget state."""
    parts = [json.dumps(notebook.get("metadata", {}).get("widgets", {}))]
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            parts.append(text if isinstance(text, str) else "".join(text))
            for value in (output.get("data") or {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
            parts += [str(output.get("evalue", "")), "".join(output.get("traceback", []))]
    return "\n".join(parts)


def leaked(source: str, notebook: dict[str, Any]) -> list[str]:
    shown = normalize_line(everything_shown(notebook))
    return sorted(line for line in solution_lines(source) if line in shown)


def test_the_scan_finds_a_solution_line_in_any_mime_type() -> None:
    source = ("# %%\n### BEGIN SOLUTION\nchannel.queue_bind('q', 'ex', routing_key='a.#')\n"
              "### END SOLUTION\n")
    html = {"cells": [{"outputs": [{"output_type": "display_data", "data": {
        "text/html": '<pre>channel.queue_bind("q",  "ex", routing_key="a.#")</pre>'}}]}]}
    assert leaked(source, html)
    widget = {"metadata": {"widgets": {"state": {"m": {"value": "queue_bind('q', 'ex', "
                                                                 "routing_key='a.#')"}}}},
              "cells": []}
    assert not leaked(source, widget)  # not the whole line
    widget["metadata"]["widgets"]["state"]["m"]["value"] = (
        "channel.queue_bind('q','ex',routing_key='a.#')")
    assert leaked(source, widget)
    assert not leaked(source, {"cells": [{"outputs": [{"output_type": "stream",
                                                       "text": "✘ not yet"}]}]})


@pytest.mark.integration
@pytest.mark.labs
@pytest.mark.parametrize("lab", LAB_LIST, ids=[lab.name for lab in LAB_LIST])
def test_untouched_student_notebook_shows_no_solution_line(
        lab, lab_brokers, lab_state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MQKIT_STATE_DIR", str(lab_state_dir))
    monkeypatch.setenv("MQKIT_BACKEND", "process")
    notebook = nbformat.read(lab.student, as_version=4)
    NotebookClient(notebook, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(LABS)}},
                   store_widget_state=True).execute()
    ran = json.loads(nbformat.writes(notebook))
    assert any(cell.get("outputs") for cell in ran["cells"]), "the notebook showed nothing"
    found = leaked(lab.source.read_text(encoding="utf-8"), ran)
    assert not found, f"{lab.student.name} shows solution lines: {found}"
