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


def json_lines(logs: str) -> list[dict]:
    """The JSON lines (one per message) a service printed, from ``compose logs`` output."""
    texts = (line.partition("| ")[2] for line in logs.splitlines())
    return [json.loads(text) for text in texts if text.startswith("{")]


@pytest.fixture
def project(tmp_path):
    """Run a compose command in a project of its own; ``down -v`` it at the end."""
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

    def run(*args: str, files: list | None = None, timeout: float = 120) -> str:
        files = files or [merged]
        options = [arg for path in files for arg in ("-f", str(path))]
        result = subprocess.run([*command, "-p", name, *options, *args], cwd=EXAMPLE, env=env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result.stdout

    config = yaml.safe_load(run("config", files=[EXAMPLE / "compose.yaml", CI_OVERRIDE]))
    for spec in config["services"].values():
        assert spec["network_mode"] in ("host", "none")
        spec.pop("ports", None)   # nothing to publish from the host's own network
    merged = tmp_path / "compose.merged.yaml"
    merged.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        yield run
    finally:
        run("down", "-v", "--timeout", "5")
        label = f"label=com.docker.compose.project={name}"
        for kind in ("container", "volume", "network"):
            left = subprocess.run(["docker", kind, "ls", "-q", "--filter", label],
                                  capture_output=True, text=True, timeout=30).stdout.split()
            assert not left, f"{name}: {kind}s left after down -v: {left}"


def container_state(run, service: str) -> dict:
    ids = run("ps", "-q", service).split()
    assert len(ids) == 1, f"{service}: containers {ids}"
    out = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return json.loads(out)[0]


def test_producer_messages_reach_the_consumer(project):
    project("up", "--build", "-d", timeout=600)

    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        received = json_lines(project("logs", "--no-color", "consumer"))
        producer = container_state(project, "producer")["State"]
        done = len(received) >= MESSAGES and producer["Status"] == "exited"
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    logs = project("logs", "--no-color")
    assert [r["payload"]["seq"] for r in received] == list(range(1, MESSAGES + 1)), logs
    assert {r["qos"] for r in received} == {1}
    assert (producer["Status"], producer["ExitCode"]) == ("exited", 0), logs
    sent = json_lines(project("logs", "--no-color", "producer"))
    assert [s["sent"] for s in sent] == list(range(1, MESSAGES + 1))
    for service in ("mosquitto", "consumer", "producer"):
        assert container_state(project, service)["HostConfig"]["NetworkMode"] == "host"
