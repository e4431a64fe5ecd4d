"""Brokers of their own for the fault scenarios: these get restarted and killed.

``fault_backend`` is parametrized over the process backend and, marked ``docker``, the docker
backend (host networking, images from ``MQKIT_TEST_RABBITMQ_IMAGE`` /
``MQKIT_TEST_MOSQUITTO_IMAGE`` as set by ``scripts/broker-images.sh``). On the docker backend
``kill`` is a SIGKILL of the container and ``restart`` is ``docker restart``. A missing
engine or image skips on a laptop and fails in CI (``require``).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session",
                params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def fault_backend(request: pytest.FixtureRequest, broker_factory):
    """A backend in its own state directory, never the shared ``brokers``."""
    backend = broker_factory(request.param)
    yield backend
    backend.stop()


@pytest.fixture
def faulty(fault_backend):
    """Endpoints of the fault brokers, revived first if a previous scenario killed one."""
    return fault_backend.start()
