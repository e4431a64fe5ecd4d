"""Brokers of their own for the fault scenarios: these get restarted and killed."""

from __future__ import annotations

import pytest

from tests.conftest import require


@pytest.fixture(scope="session")
def fault_backend(tmp_path_factory: pytest.TempPathFactory):
    """A process backend in its own state directory, never the shared ``brokers``."""
    from mqkit.brokers.process import ProcessBackend
    from mqkit.config import Settings

    state_dir = tmp_path_factory.mktemp("mqkit-faults")
    backend = ProcessBackend(Settings.from_env(env={}, state_dir=state_dir))
    availability = backend.availability()
    require(availability.is_available, f"process backend: {availability.reason}")
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def faulty(fault_backend):
    """Endpoints of the fault brokers, revived first if a previous scenario killed one."""
    return fault_backend.start()
