"""In a real kernel, a cold start shows its progress line; a warm one shows nothing."""

from __future__ import annotations

import pytest

from tests.helpers import require

pytestmark = pytest.mark.integration


def _run(state_dir, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MQKIT_STATE_DIR", str(state_dir))
    monkeypatch.setenv("MQKIT_BACKEND", "process")
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import mqkit\nendpoints = mqkit.start_brokers()"))
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    return notebook.cells[0].outputs


def test_cold_start_shows_progress_and_warm_start_shows_nothing(tmp_path, monkeypatch):
    from mqkit.brokers.process import ProcessBackend
    from mqkit.config import Settings

    backend = ProcessBackend(Settings.from_env(env={}, state_dir=tmp_path))
    require(backend.availability().is_available, "process backend unavailable")
    try:
        cold = _run(tmp_path, monkeypatch)
        texts = [o["data"]["text/plain"] for o in cold if "data" in o]
        assert len(texts) == 1, cold  # one line, updated in place
        assert texts[0].startswith("brokers ready in "), texts
        assert "text/html" in cold[0]["data"]
        warm = _run(tmp_path, monkeypatch)
        assert warm == [], warm
    finally:
        backend.stop()
