"""Brokers for the fault scenarios, on the process backend and the newest broker line.

Every scenario runs on RabbitMQ 3.10 / Mosquitto 2.0.11 (process backend) and on the newest
line, RabbitMQ 4.3 / Mosquitto 2.1 in Docker (``tests/lines.py``, reach ``full``;
``make test-matrix``: every line). A test's id names where it ran (``[docker-4.3]``).

- ``brokers`` (overriding the session's): shared per line, never restarted or killed here.
- ``fault_backend`` / ``faulty``: brokers of their own that scenarios restart and kill. On
  the docker backend ``kill`` is a SIGKILL of the container and ``restart`` is
  ``docker restart``. A missing engine or image skips on a laptop and fails in CI
  (``require``).
"""

from __future__ import annotations

import pytest

from tests.lines import backend_params, line_brokers_fixture, make_line_backend

#: The shared brokers of one line: do not restart or kill them; use unique names.
brokers = line_brokers_fixture("full")


@pytest.fixture(scope="session", params=backend_params("full"))
def fault_backend(request: pytest.FixtureRequest, broker_factory):
    """A backend in its own state directory, never the shared ``brokers``."""
    backend = make_line_backend(broker_factory, request.param)
    yield backend
    backend.stop()


@pytest.fixture
def faulty(fault_backend):
    """Endpoints of the fault brokers, revived first if a previous scenario killed one."""
    return fault_backend.start()
