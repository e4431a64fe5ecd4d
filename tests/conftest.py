"""Shared test helpers: CI-aware skipping and a clean MQKIT_* environment."""

from __future__ import annotations

import os

import pytest

#: In CI (``.ci/run`` sets CI=true) a missing service is a failure, not a skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` on a laptop when ``condition`` is false; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _clean_mqkit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's MQKIT_* settings (fixtures set what they need)."""
    for name in list(os.environ):
        if name.startswith("MQKIT_") and not name.startswith("MQKIT_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def broker_state_dir(tmp_path_factory: pytest.TempPathFactory):
    """A state directory of its own for the session's shared brokers."""
    return tmp_path_factory.mktemp("mqkit-state")


@pytest.fixture(scope="session")
def brokers(broker_state_dir):
    """Real RabbitMQ and Mosquitto started through mqkit (process backend) for the session.

    Shared by many tests: do not restart or kill them (start your own for that), and use
    unique queue, exchange and topic names.
    """
    from mqkit.brokers.process import ProcessBackend
    from mqkit.config import Settings

    backend = ProcessBackend(Settings.from_env(env={}, state_dir=broker_state_dir))
    require(backend.availability().is_available,
            f"process backend: {backend.availability().reason}")
    endpoints = backend.start()
    yield endpoints
    backend.stop()
