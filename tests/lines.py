"""Which broker lines a test runs on (issue 14): the matrix, as data.

A *line* is a pair of broker versions from one Debian suite, run in Docker from the images
``scripts/broker-images.sh`` names in ``MQKIT_TEST_BROKER_LINES`` (the official images of
that line where a registry answers, else local stand-ins):

=============  ==========  ===========  ============================================
line id        RabbitMQ    Mosquitto    where
=============  ==========  ===========  ============================================
``process``    3.10.8      2.0.11       the process backend (this machine's Debian)
``4.3/2.1``    4.3.6       2.1.2        Docker, sid; the line mqkit's default pins are
``4.0/2.0.21`` 4.0.5       2.0.21       Docker, trixie
``3.10/2.0.11`` 3.10.8     2.0.11       Docker, bookworm (``make test-matrix`` only)
=============  ==========  ===========  ============================================

How widely a test runs is its *reach*:

- ``"full"`` (labs, faults, grading, browser): the process backend and the newest line;
  with ``MQKIT_TEST_MATRIX=1`` (``make test-matrix``) every line.
- ``"wide"`` (routing properties, version-sensitive labs, behaviour checks): the process
  backend and every line in ``MQKIT_TEST_BROKER_LINES`` (``make test`` lists 4.3 and 4.0).

Test ids name the line (``[docker-4.3]``), so a result always says where it ran.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

#: The newest line, used when ``MQKIT_TEST_BROKER_LINES`` is not set (a laptop without
#: ``scripts/broker-images.sh``; the tests on it then skip, or fail in CI, without images).
NEWEST = "4.3/2.1=mqkit-standin/rabbitmq:4.3-management,mqkit-standin/mosquitto:2.1"


@dataclass(frozen=True)
class Line:
    """One pair of broker lines (a Debian suite) and the images that hold them."""

    rabbitmq: str
    mosquitto: str
    rabbitmq_image: str
    mosquitto_image: str

    @property
    def id(self) -> str:
        return f"rabbitmq-{self.rabbitmq}+mosquitto-{self.mosquitto}"

    @property
    def short_id(self) -> str:
        """``docker-4.3``: the test-id part for tests that also run on the process backend."""
        return f"docker-{self.rabbitmq}"

    @property
    def major(self) -> int:
        return int(self.rabbitmq.split(".")[0])

    def settings(self) -> dict[str, str]:
        """Docker-backend settings that run this line (host network: loopback only)."""
        return {"rabbitmq_image": self.rabbitmq_image, "mosquitto_image": self.mosquitto_image,
                "docker_network": "host"}


def configured_lines() -> list[Line]:
    """Every line ``MQKIT_TEST_BROKER_LINES`` names, newest first."""
    lines = []
    for entry in (os.environ.get("MQKIT_TEST_BROKER_LINES") or NEWEST).split():
        versions, _, images = entry.partition("=")
        rabbitmq, _, mosquitto = versions.partition("/")
        rabbitmq_image, _, mosquitto_image = images.partition(",")
        lines.append(Line(rabbitmq, mosquitto, rabbitmq_image, mosquitto_image))
    return lines


def is_matrix() -> bool:
    """True under ``make test-matrix``: every test of reach ``full`` runs on every line."""
    return os.environ.get("MQKIT_TEST_MATRIX") == "1"


def lines_for(reach: str) -> list[Line]:
    """The Docker lines a test of ``reach`` (``"full"`` or ``"wide"``) runs on."""
    lines = configured_lines()
    if reach == "wide" or is_matrix():
        return lines
    if reach == "full":
        return lines[:1]
    raise ValueError(f"unknown reach {reach!r}")


def backend_params(reach: str) -> list:
    """``pytest.param``s: ``"process"`` and one :class:`Line` per Docker line of ``reach``."""
    return [pytest.param("process", id="process")] + [
        pytest.param(line, id=line.short_id, marks=pytest.mark.docker)
        for line in lines_for(reach)]


#: ``line id -> "RabbitMQ 4.3.6, Mosquitto 2.1.2"``: what the brokers of each line said they
#: are, the first time the session started them (``tests/conftest.py`` prints it at the end).
VERSIONS_SEEN: dict[str, str] = {}


def param_id(param) -> str:
    """``process`` or ``docker-4.3``: how test ids name the line."""
    return "process" if param == "process" else param.short_id


def record_versions(param, endpoints) -> None:
    """Ask the brokers of ``param``'s line for their versions, once per session."""
    from mqkit.brokers.versions import broker_versions

    key = param_id(param)
    if key not in VERSIONS_SEEN:
        rabbitmq, mosquitto = broker_versions(endpoints)
        VERSIONS_SEEN[key] = f"RabbitMQ {rabbitmq.version or '?'}, " \
                             f"Mosquitto {mosquitto.version or '?'}"


def make_line_backend(broker_factory, param, *, start: bool = True):
    """The backend for a :func:`backend_params` value, in a state directory of its own."""
    if param == "process":
        backend = broker_factory("process", start=start)
    else:
        backend = broker_factory("docker", start=start, **param.settings())
    if start:
        record_versions(param, backend.running())
    return backend


def line_brokers_fixture(reach: str, name: str = "brokers"):
    """A module-scoped ``brokers`` fixture that runs a module's tests once per line of ``reach``.

    Assign it in a test module or conftest (``brokers = line_brokers_fixture("full")``) to
    override the session's process-only ``brokers``: each line's brokers are shared (the
    session fixture ``line_backends``), never restarted or killed.
    """

    @pytest.fixture(scope="module", params=backend_params(reach), name=name)
    def line_brokers(request: pytest.FixtureRequest, line_backends):
        return line_backends(request.param).start()

    return line_brokers
