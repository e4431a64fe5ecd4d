"""Brokers of their own for the fault scenarios: these get restarted and killed.

``fault_backend`` is parametrized over the process backend and, marked ``docker``, the docker
backend (host networking, images from ``MQKIT_TEST_RABBITMQ_IMAGE`` /
``MQKIT_TEST_MOSQUITTO_IMAGE`` as set by ``scripts/broker-images.sh``). On the docker backend
``kill`` is a SIGKILL of the container and ``restart`` is ``docker restart``. A missing
engine or image skips on a laptop and fails in CI (``require``).
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import require


def _process_backend(state_dir):
    from mqkit.brokers.process import ProcessBackend
    from mqkit.config import Settings

    backend = ProcessBackend(Settings.from_env(env={}, state_dir=state_dir))
    availability = backend.availability()
    require(availability.is_available, f"process backend: {availability.reason}")
    return backend


def _docker_backend(state_dir):
    from mqkit.brokers.docker import DockerBackend
    from mqkit.config import Settings

    images = {"rabbitmq_image": os.environ.get("MQKIT_TEST_RABBITMQ_IMAGE"),
              "mosquitto_image": os.environ.get("MQKIT_TEST_MOSQUITTO_IMAGE")}
    backend = DockerBackend(Settings.from_env(env={}, state_dir=state_dir, backend="docker",
                                              docker_network="host", **images))
    availability = backend.availability()
    require(availability.is_available, f"Docker engine: {availability.reason}")
    tags = {tag for image in backend.client().images.list() for tag in image.tags}
    for image in (backend.settings.rabbitmq_image, backend.settings.mosquitto_image):
        require(any(image in tag for tag in tags),
                f"image {image} is not on this machine (scripts/broker-images.sh builds it)")
    return backend


@pytest.fixture(scope="session",
                params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def fault_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A backend in its own state directory, never the shared ``brokers``."""
    state_dir = tmp_path_factory.mktemp(f"mqkit-faults-{request.param}")
    make = _process_backend if request.param == "process" else _docker_backend
    backend = make(state_dir)
    try:
        backend.start()
        yield backend
    finally:
        backend.stop()


@pytest.fixture
def faulty(fault_backend):
    """Endpoints of the fault brokers, revived first if a previous scenario killed one."""
    return fault_backend.start()
