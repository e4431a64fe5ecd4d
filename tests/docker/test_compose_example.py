"""The lecture's MQTT example (docker/mqtt-python) end to end with docker compose.

``compose.yaml`` puts its containers on a bridge network and publishes port 1883; neither is
possible on the kit's CI machine (no private-range traffic; the machine's own Mosquitto holds
1883). So the test adds ``compose.ci.yaml``: host networking, a free loopback port, and the
producer and consumer images built from the same Dockerfiles FROM a local base. docker-compose
1.29 refuses published ports on a host-network container and an override cannot remove them,
so the test merges the two files with ``config``, drops ``ports:`` and runs ``up`` on that.

Images: ``MQKIT_TEST_MOSQUITTO_IMAGE`` (the broker) and ``MQKIT_TEST_PYTHON_IMAGE`` (the base of
the producer and consumer images), set by ``scripts/broker-images.sh``; without them, the
pinned official images. The images built here stay cached; containers and volumes go.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml

from mqkit.brokers.ports import free_port
from mqkit.config import DEFAULT_MOSQUITTO_IMAGE
from tests.helpers import require
from tests.unit.test_compose_files import CI_OVERRIDE, EXAMPLE, compose_command

pytestmark = [pytest.mark.docker, pytest.mark.integration]

MESSAGES = 5
#: How long the producer's messages may take to show up in the consumer's log.
DELIVERY_TIMEOUT = 60.0


def default_python_base() -> str:
    dockerfile = (EXAMPLE / "Dockerfile-consumer").read_text()
    return re.search(r"^ARG BASE=(\S+)$", dockerfile, re.MULTILINE).group(1)


def has_image(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          timeout=30).returncode == 0


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker(*args: str) -> str:
    """Run the docker CLI (quicker than compose for reading state); its stdout."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


@dataclass
class Project:
    """One compose project of the example: its name and a way to run compose on it."""

    name: str
    compose: Callable[..., str]

    def container(self, service: str) -> dict:
        """``docker inspect`` of the service's one container."""
        ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--filter", f"label=com.docker.compose.service={service}").split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return json.loads(docker("inspect", ids[0]))[0]

    def printed(self, service: str) -> list[dict]:
        """The JSON lines (one per message) the service printed on stdout."""
        lines = docker("logs", self.container(service)["Id"]).splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture
def project(tmp_path):
    """The example as a compose project of its own, with compose.ci.yaml; ``down -v`` at the end."""
    command = compose_command()
    require(command is not None,
            "neither the `docker compose` plugin nor `docker-compose` is installed")
    require(docker_answers(), "no Docker engine answers `docker info`")
    mosquitto = os.environ.get("MQKIT_TEST_MOSQUITTO_IMAGE") or DEFAULT_MOSQUITTO_IMAGE
    python = os.environ.get("MQKIT_TEST_PYTHON_IMAGE") or default_python_base()
    for image in (mosquitto, python):
        require(has_image(image),
                f"image {image} is not on this machine (scripts/broker-images.sh provides it)")

    name = f"mqkit-compose-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "MQTT_CI_PORT": str(free_port()), "MQTT_CI_BASE": python,
           "MQTT_CI_MOSQUITTO_IMAGE": mosquitto, "MQTT_USERNAME": "student",
           "MQTT_PASSWORD": uuid.uuid4().hex, "MQTT_TOPIC": f"ci/{name}",
           "MESSAGE_COUNT": str(MESSAGES), "MESSAGE_INTERVAL": "0.2"}
    merged = tmp_path / "compose.merged.yaml"

    def compose(*args: str, files: tuple = (merged,), timeout: float = 120) -> str:
        options = [arg for path in files for arg in ("-f", str(path))]
        result = subprocess.run([*command, "-p", name, *options, *args], cwd=EXAMPLE, env=env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result.stdout

    config = yaml.safe_load(compose("config", files=(EXAMPLE / "compose.yaml", CI_OVERRIDE)))
    for spec in config["services"].values():
        assert spec["network_mode"] in ("host", "none")
        spec.pop("ports", None)   # nothing to publish from the host's own network
    merged.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        yield Project(name, compose)
    finally:
        compose("down", "-v", "--timeout", "5")
        label = f"label=com.docker.compose.project={name}"
        for kind in ("container", "volume", "network"):
            left = docker(kind, "ls", "-q", "--filter", label).split()
            assert not left, f"{name}: {kind}s left after down -v: {left}"


def test_producer_messages_reach_the_consumer(project):
    project.compose("up", "--build", "-d", timeout=600)

    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        received = project.printed("consumer")
        producer = project.container("producer")["State"]
        done = len(received) >= MESSAGES and producer["Status"] == "exited"
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    logs = project.compose("logs", "--no-color") if not done else ""
    assert [r["payload"]["seq"] for r in received] == list(range(1, MESSAGES + 1)), logs
    assert {r["qos"] for r in received} == {1}
    assert (producer["Status"], producer["ExitCode"]) == ("exited", 0), logs
    assert [s["sent"] for s in project.printed("producer")] == list(range(1, MESSAGES + 1))
    for service in ("mosquitto", "consumer", "producer"):
        assert project.container(service)["HostConfig"]["NetworkMode"] == "host"
