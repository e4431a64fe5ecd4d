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
from tests.lines import backend_params

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


@pytest.mark.parametrize(("notebook", "line"), list(_cases()))
def test_notebook_passes_nbval(notebook: Path, line, lab_backends) -> None:
    backend = lab_backends(line)
    backend.start()  # up again, should an earlier lab have left a broker down
    result = run_nbval(notebook, backend=backend)
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
