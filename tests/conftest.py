"""Shared fixtures: a clean MQKIT_* environment and one factory for real brokers."""

from __future__ import annotations

import os

import pytest

from tests.helpers import make_backend
from tests.lines import VERSIONS_SEEN, line_brokers_fixture, make_line_backend, record_versions


@pytest.fixture(autouse=True)
def _clean_mqkit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's MQKIT_* settings (fixtures set what they need)."""
    for name in list(os.environ):
        if name.startswith("MQKIT_") and not name.startswith("MQKIT_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def broker_factory(tmp_path_factory: pytest.TempPathFactory):
    """Make a backend (``process`` or ``docker``) in a state directory of its own.

    ``broker_factory("process")`` returns the backend with its brokers started;
    ``start=False`` returns it unstarted; settings are keyword arguments. A missing binary,
    engine or image skips on a laptop and fails in CI. Everything made is stopped at the end
    of the session (a fixture that wants its brokers gone sooner stops them itself).
    """
    made = []

    def make(name: str = "process", *, start: bool = True, **settings):
        backend = make_backend(name, tmp_path_factory.mktemp(f"mqkit-{name}"), **settings)
        made.append(backend)
        if start:
            backend.start()
        return backend

    yield make
    for backend in reversed(made):
        backend.stop()


@pytest.fixture(scope="session")
def broker_backend(broker_factory):
    """The session's shared process-backend brokers (the backend object)."""
    return broker_factory("process")


@pytest.fixture(scope="session")
def broker_state_dir(broker_backend):
    """The state directory of the session's shared brokers."""
    return broker_backend.settings.state_dir


@pytest.fixture(scope="session")
def brokers(broker_backend):
    """Real RabbitMQ and Mosquitto started through mqkit (process backend) for the session.

    Shared by many tests: do not restart or kill them (start your own for that), and use
    unique queue, exchange and topic names.
    """
    return broker_backend.start()


@pytest.fixture(scope="session")
def line_backends(request: pytest.FixtureRequest, broker_factory):
    """Shared brokers per line (``tests/lines.py``): ``line_backends(param)``, started once.

    ``"process"`` is the session's shared ``brokers``; a line gets Docker brokers of its own,
    shared by every test that asks for that line. The same rules as ``brokers``: never
    restart or kill them, use unique names.
    """
    made: dict[str, object] = {}

    def get(param):
        if param == "process":
            backend = request.getfixturevalue("broker_backend")
            record_versions(param, backend.start())
            return backend
        if param.id not in made:
            made[param.id] = make_line_backend(broker_factory, param)
        return made[param.id]

    return get


#: Endpoints on the process backend and on every line of ``MQKIT_TEST_BROKER_LINES``, for
#: modules whose results may depend on the broker's version (the routing properties): each
#: of their tests runs once per line, and its id says which (``[docker-4.3]``).
wide_brokers = line_brokers_fixture("wide", name="wide_brokers")


def pytest_terminal_summary(terminalreporter) -> None:
    """Say which broker versions the line-parametrized tests ran on (ids name the lines)."""
    if VERSIONS_SEEN:
        terminalreporter.write_sep("-", "broker versions per line")
        for line, versions in sorted(VERSIONS_SEEN.items()):
            terminalreporter.write_line(f"{line}: {versions}")
