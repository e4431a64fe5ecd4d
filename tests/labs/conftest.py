"""Fixtures for the lab tests: the labs folder and brokers of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lines import make_line_backend

LABS = Path(__file__).resolve().parents[2] / "labs"
SANITIZE = LABS / "nbval-sanitize.cfg"
#: Seconds one notebook may take under nbval (lab 02 restarts RabbitMQ, about 12 s).
NOTEBOOK_TIMEOUT = 300


@pytest.fixture(scope="session")
def lab_backend(broker_factory):
    """Brokers for the lab notebooks, apart from the session's shared ``brokers``.

    Lab 02 restarts RabbitMQ; with brokers of their own, the restart cannot disturb tests
    that hold connections to the shared ones.
    """
    return broker_factory("process")


@pytest.fixture(scope="session")
def lab_backends(request: pytest.FixtureRequest, broker_factory):
    """Lab brokers per line (``tests/lines.py``): ``lab_backends(param)``, started on first use.

    ``"process"`` is :func:`lab_backend`; a :class:`~tests.lines.Line` gets Docker brokers
    of that line, kept for the session (every lab that runs on it shares them, as the
    process ones are shared).
    """
    made: dict[str, object] = {}

    def get(param):
        if param == "process":
            return request.getfixturevalue("lab_backend")
        if param.id not in made:
            made[param.id] = make_line_backend(broker_factory, param)
        return made[param.id]

    return get


@pytest.fixture(scope="session")
def lab_state_dir(lab_backend) -> Path:
    """The state directory of the lab tests' brokers."""
    return lab_backend.settings.state_dir


@pytest.fixture(scope="session")
def lab_brokers(lab_backend):
    """The endpoints of the lab tests' brokers."""
    return lab_backend.start()


def backend_environment(backend) -> dict[str, str]:
    """The ``MQKIT_*`` variables that point a kernel's ``mqkit.start_brokers()`` at ``backend``.

    ``MQKIT_STATE_DIR`` finds its brokers, ``MQKIT_BACKEND`` keeps it from looking elsewhere,
    and a docker backend's images and network come along, so the kernel sees the same settings
    and reuses the running containers.
    """
    settings = backend.settings
    env = {"MQKIT_STATE_DIR": str(settings.state_dir), "MQKIT_BACKEND": backend.name}
    if backend.name == "docker":
        env |= {"MQKIT_RABBITMQ_IMAGE": settings.rabbitmq_image,
                "MQKIT_MOSQUITTO_IMAGE": settings.mosquitto_image,
                "MQKIT_DOCKER_NETWORK": settings.docker_network}
    return env


def run_nbval(notebook: Path, state_dir: Path | None = None, *,
              backend=None) -> subprocess.CompletedProcess[str]:
    """Run one notebook under nbval in a child pytest; its kernel reuses our brokers.

    The kernel's ``mqkit.start_brokers()`` finds ``backend``'s brokers
    (:func:`backend_environment`), or the process brokers in ``state_dir``.
    ``-p tests.labs.conftest`` loads :func:`pytest_collectstart` below into the child, which
    leaves ``text/html`` out of nbval's comparison.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    if backend is not None:
        env.update(backend_environment(backend))
    else:
        env.update(MQKIT_STATE_DIR=str(state_dir), MQKIT_BACKEND="process")
    command = [sys.executable, "-m", "pytest", "--nbval", str(notebook),
               "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE),
               "-p", "tests.labs.conftest",
               "-p", "no:cacheprovider", "-q", "--timeout", str(NOTEBOOK_TIMEOUT)]
    return subprocess.run(command, cwd=LABS.parent, env=env, capture_output=True, text=True,
                          timeout=NOTEBOOK_TIMEOUT + 60, check=False)


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Leave ``text/html`` out of nbval's comparison: the one place this is configured.

    Check results render as HTML too (``CheckResult._repr_html_``), but the expected outputs
    hold only ``text/plain`` (``# Expected result:`` blocks). nbval compares every MIME type
    the run produces that is not in its ``skip_compare`` and fails on "Unexpected output
    fields: {'text/html'}"; it has no option to extend that list, so this hook does, for the
    child pytest that :func:`run_nbval` (and the Binder test) start with ``-p
    tests.labs.conftest``. The plain text stays compared. In this test session there are no
    notebooks, so the hook does nothing here.
    """
    skip_compare = getattr(collector, "skip_compare", None)  # only nbval's notebook files
    if isinstance(skip_compare, tuple) and "text/html" not in skip_compare:
        collector.skip_compare = (*skip_compare, "text/html")
