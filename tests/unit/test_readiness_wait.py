"""wait_until_ready with a watched port: no probe while the port is closed, one once it opens,
and a broker that dies meanwhile is reported (no broker: the port and probe are stand-ins)."""

from __future__ import annotations

import pytest

from mqkit.brokers import readiness
from mqkit.exceptions import BrokerConnectionError, BrokerExited


def test_probes_only_once_the_watched_port_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "PORT_POLL_INTERVAL", 0.001)
    checks = iter([False, False, False, True])
    probes: list[int] = []

    def is_open() -> bool:
        return next(checks)

    elapsed = readiness.wait_until_ready(lambda: probes.append(1), what="RabbitMQ",
                                         backend="process", timeout=5, is_open=is_open)
    assert probes == [1]
    assert elapsed < 1


def test_a_probe_that_fails_after_the_port_opened_is_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "POLL_INTERVAL", 0.001)
    outcomes = [BrokerConnectionError("booting"), None]
    watched: list[int] = []

    def probe() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    def is_open() -> bool:
        watched.append(1)
        return True

    readiness.wait_until_ready(probe, what="RabbitMQ", backend="process", timeout=5,
                               is_open=is_open)
    assert outcomes == []
    assert watched == [1]  # a port seen open is not watched again


def test_a_broker_that_exits_while_its_port_is_closed_is_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(readiness, "PORT_POLL_INTERVAL", 0.001)

    def probe() -> None:
        raise BrokerConnectionError("connection refused")

    with pytest.raises(BrokerExited, match="exit code 1"):
        readiness.wait_until_ready(probe, what="RabbitMQ", backend="process", timeout=5,
                                   exited=lambda: "rabbitmq: exit code 1",
                                   is_open=lambda: False)
