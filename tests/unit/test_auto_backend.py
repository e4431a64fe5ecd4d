"""``auto``'s order and its error listing, with fake backends at the backend boundary.

The real backends are tested against real brokers elsewhere; here only the choosing is under
test, so each fake records what ``auto`` asked of it.
"""

from __future__ import annotations

import pytest

from mqkit.brokers import launcher
from mqkit.brokers.base import Availability, Backend, BrokerStatus
from mqkit.endpoints import Endpoints
from mqkit.exceptions import BrokerStartError, NoBackendError

CALLS: list[str] = []


def fake(name: str, *, available: bool = True, has_state: bool = False,
         running: bool = False, fails: bool = False) -> type[Backend]:
    """A backend class named ``name`` that behaves as told and logs every call."""

    class Fake(Backend):
        def availability(self) -> Availability:
            CALLS.append(f"{name}.availability")
            return Availability(name, available, "ok" if available else f"{name} is missing",
                                hint=f"install {name}")

        def has_state(self) -> bool:
            CALLS.append(f"{name}.has_state")
            return has_state

        def running(self) -> Endpoints | None:
            CALLS.append(f"{name}.running")
            return _endpoints(name) if running else None

        def start(self) -> Endpoints:
            CALLS.append(f"{name}.start")
            if fails:
                raise BrokerStartError(f"{name} could not start", hint=f"fix {name}")
            return _endpoints(name)

        def stop(self) -> list[str]:
            CALLS.append(f"{name}.stop")
            return []

        def status(self) -> list[BrokerStatus]:
            return []

    Fake.name = name
    return Fake


def _endpoints(name: str) -> Endpoints:
    return Endpoints("amqp://u:p@127.0.0.1:1/%2F", "mqtt://u:p@127.0.0.1:2",
                     "http://u:p@127.0.0.1:3", name)


@pytest.fixture
def backends(monkeypatch, tmp_path):
    CALLS.clear()
    monkeypatch.setenv("MQKIT_STATE_DIR", str(tmp_path))

    def install(**classes: type[Backend]) -> None:
        for name in ("external", "docker", "process"):
            monkeypatch.setitem(launcher.BACKENDS, name, classes.get(name, fake(name)))

    return install


def test_external_wins_when_configured(backends, monkeypatch):
    backends(docker=fake("docker", has_state=True, running=True))
    monkeypatch.setenv("MQKIT_AMQP_URL", "amqp://u:p@127.0.0.1:1/%2F")
    assert launcher.start_brokers().backend == "external"
    assert CALLS == ["external.start"]


def test_brokers_mqkit_already_runs_come_before_a_new_start(backends):
    backends(process=fake("process", has_state=True, running=True))
    assert launcher.start_brokers().backend == "process"
    assert "docker.start" not in CALLS
    assert "process.start" not in CALLS
    assert CALLS[:2] == ["process.has_state", "process.running"]


def test_docker_before_process_for_a_fresh_start(backends):
    backends()
    assert launcher.start_brokers().backend == "docker"
    assert CALLS[-2:] == ["docker.availability", "docker.start"]


def test_process_when_docker_is_unavailable(backends):
    backends(docker=fake("docker", available=False))
    assert launcher.start_brokers().backend == "process"
    assert CALLS[-4:] == ["docker.availability", "process.availability", "process.start"][-4:] \
        or CALLS[-3:] == ["docker.availability", "process.availability", "process.start"]


def test_process_when_docker_answers_but_cannot_start(backends):
    backends(docker=fake("docker", fails=True))
    assert launcher.start_brokers().backend == "process"
    assert CALLS.index("docker.start") < CALLS.index("process.start")


def test_no_backend_lists_each_reason_and_hint(backends):
    backends(docker=fake("docker", available=False), process=fake("process", available=False))
    with pytest.raises(NoBackendError) as info:
        launcher.start_brokers()
    text = str(info.value)
    assert "docker: docker is missing. install docker" in text
    assert "process: process is missing. install process" in text
    assert "MQKIT_AMQP_URL" in text  # the third way: a classroom broker
    assert not any(call.endswith(".start") for call in CALLS)


def test_a_named_backend_is_used_without_trying_others(backends):
    backends()
    assert launcher.start_brokers("process").backend == "process"
    assert CALLS == ["process.start"]


def test_a_launch_under_way_is_waited_for_not_doubled(backends):
    # State recorded but not answering yet: another notebook or `mqkit lab` is launching.
    backends(process=fake("process", has_state=True, running=False))
    assert launcher.start_brokers().backend == "process"
    assert "docker.start" not in CALLS
    assert CALLS[:3] == ["process.has_state", "process.running", "process.start"]


def test_brokers_that_cannot_be_revived_give_way_to_a_fresh_start(backends):
    backends(docker=fake("docker", has_state=True, fails=True))
    assert launcher.start_brokers().backend == "process"
    assert CALLS.index("docker.start") < CALLS.index("process.start")
