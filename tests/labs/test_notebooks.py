"""Every lab runs under nbval against real brokers, on the student and the solution path.

nbval compares the outputs stored in a notebook (the ``# Expected output`` blocks of the
lab sources: received messages, check results) after ``labs/nbval-sanitize.cfg``, and
checks that every other cell runs without error. The handed-out student notebook stores no
output, so the student path runs from its test-only copy (``labs/_test/``), which holds the
student's expected outputs; the copy's code is the handed-out notebook's, cell for cell.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from mqkit.authoring import find_labs, render_notebook
from tests.labs.conftest import LABS, NOTEBOOK_TIMEOUT, run_nbval
from tests.lines import backend_params, param_id

pytestmark = [pytest.mark.integration, pytest.mark.labs]

#: Labs whose text states a fact that differs between broker lines (queue types and
#: deprecations, redelivery headers, the versions that run): they also run on every line of
#: ``MQKIT_TEST_BROKER_LINES`` in ``make test`` (RabbitMQ 4.0 too), the others on the process
#: backend (3.10) and the newest line (4.3) only; ``make test-matrix`` runs all on every line.
VERSION_SENSITIVE = {"00", "01", "02", "06", "09"}


def _cases():
    for lab in find_labs(LABS):
        reach = "wide" if lab.name[:2] in VERSION_SENSITIVE else "full"
        for line in backend_params(reach):
            for path in (lab.test_copy, lab.solution):
                yield pytest.param(path, line.values[0], marks=line.marks,
                                   id=f"{path.relative_to(LABS)}-{line.id}")


class NotebookRuns:
    """Runs the selected notebooks under nbval: in order on each line, the lines side by side.

    Each line has brokers of its own, so its notebooks (lab 02 restarts RabbitMQ) never
    meet another line's; and an nbval run mostly waits on its kernel and the brokers (the
    load stays near 1 on two cores), so two lines at once take about the time of one.
    """

    def __init__(self, selected: list[tuple[Path, object]], lab_backends) -> None:
        by_line: dict[str, tuple[object, list[Path]]] = {}
        for notebook, line in selected:
            by_line.setdefault(param_id(line), (line, []))[1].append(notebook)
        self.futures = {(notebook, param_id(line)): Future() for notebook, line in selected}
        self.stopping = False  # set at teardown: what has not started yet is not run
        # Backends are made here, on pytest's thread; only the runs go to the pool.
        lines = [(key, lab_backends(line), notebooks)
                 for key, (line, notebooks) in by_line.items()]
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(lines)),
                                       thread_name_prefix="nbval")
        for key, backend, notebooks in lines:
            self.pool.submit(self._run_line, key, backend, notebooks)

    def _run_line(self, key: str, backend, notebooks: list[Path]) -> None:
        for notebook in notebooks:
            future = self.futures[(notebook, key)]
            if self.stopping:
                future.cancel()
                continue
            try:
                backend.start()  # up again, should an earlier lab have left a broker down
                future.set_result(run_nbval(notebook, backend=backend))
            except BaseException as exc:  # the test that waits for it reports it
                future.set_exception(exc)

    def result(self, notebook: Path, line) -> subprocess.CompletedProcess[str]:
        return self.futures[(notebook, param_id(line))].result(timeout=NOTEBOOK_TIMEOUT + 120)


@pytest.fixture(scope="module")
def notebook_runs(request: pytest.FixtureRequest, lab_backends):
    """The :class:`NotebookRuns` of the notebooks this session selected (``-k`` is honoured),
    queued in the order the session runs them."""
    selected = [(item.callspec.params["notebook"], item.callspec.params["line"])
                for item in request.session.items
                if getattr(item, "originalname", "") == "test_notebook_passes_nbval"]
    runs = NotebookRuns(selected, lab_backends)
    yield runs
    runs.stopping = True
    runs.pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize(("notebook", "line"), list(_cases()))
def test_notebook_passes_nbval(notebook: Path, line, notebook_runs) -> None:
    result = notebook_runs.result(notebook, line)
    assert result.returncode == 0, (
        f"nbval failed on {notebook.relative_to(LABS.parent)} ({line_name(line)}):\n"
        f"{result.stdout}\n{result.stderr}")
    assert " passed" in result.stdout


def line_name(line) -> str:
    """What a failure says about where it ran."""
    if line == "process":
        return "process backend, this machine's RabbitMQ and Mosquitto"
    return f"Docker, RabbitMQ {line.rabbitmq} ({line.rabbitmq_image}), " \
           f"Mosquitto {line.mosquitto} ({line.mosquitto_image})"


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
