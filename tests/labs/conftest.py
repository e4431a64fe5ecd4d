"""Fixtures for the lab tests: the labs folder and brokers of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

LABS = Path(__file__).resolve().parents[2] / "labs"
SANITIZE = LABS / "nbval-sanitize.cfg"
#: Seconds one notebook may take under nbval (lab 02 restarts RabbitMQ, about 12 s).
NOTEBOOK_TIMEOUT = 300


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory of the lab tests' brokers."""
    return tmp_path_factory.mktemp("mqkit-lab-state")


@pytest.fixture(scope="session")
def lab_brokers(lab_state_dir: Path):
    """Brokers for the lab notebooks, apart from the session's shared ``brokers``.

    Lab 02 restarts RabbitMQ; with brokers of their own, the restart cannot disturb tests
    that hold connections to the shared ones.
    """
    from mqkit.brokers.process import ProcessBackend
    from mqkit.config import Settings

    backend = ProcessBackend(Settings.from_env(env={}, state_dir=lab_state_dir))
    require(backend.availability().is_available,
            f"process backend: {backend.availability().reason}")
    endpoints = backend.start()
    yield endpoints
    backend.stop()


def run_nbval(notebook: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run one notebook under nbval in a child pytest; its kernel reuses our brokers.

    ``MQKIT_STATE_DIR`` points the notebook's ``mqkit.start_brokers()`` at the brokers in
    ``state_dir``; ``MQKIT_BACKEND=process`` keeps it from looking elsewhere.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env.update(MQKIT_STATE_DIR=str(state_dir), MQKIT_BACKEND="process")
    command = [sys.executable, "-m", "pytest", "--nbval", str(notebook),
               "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE),
               "-p", "no:cacheprovider", "-q", "--timeout", str(NOTEBOOK_TIMEOUT)]
    return subprocess.run(command, cwd=LABS.parent, env=env, capture_output=True, text=True,
                          timeout=NOTEBOOK_TIMEOUT + 60, check=False)
