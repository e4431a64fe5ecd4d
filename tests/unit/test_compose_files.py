"""The compose files under docker/: parsed and checked, and validated by `docker compose`.

docker/compose.yaml runs both brokers; docker/mqtt-python/compose.yaml is the lecture's
Mosquitto + producer + consumer example, compose.ci.yaml its override for a machine without a
bridge network, and lecture/ keeps the lecture's own choices to compare with. Nothing is built
or started here (tests/docker/test_compose_example.py runs the example end to end).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mqkit.config import DEFAULT_MOSQUITTO_IMAGE, DEFAULT_RABBITMQ_IMAGE
from tests.helpers import require

DOCKER = Path(__file__).resolve().parents[2] / "docker"
EXAMPLE = DOCKER / "mqtt-python"
CI_OVERRIDE = EXAMPLE / "compose.ci.yaml"
LECTURE = EXAMPLE / "lecture"
COMPOSE_FILES = {"brokers": DOCKER / "compose.yaml", "mqtt-python": EXAMPLE / "compose.yaml"}
#: What `docker compose config` needs to interpolate each file (passwords have no default).
COMPOSE_ENV = {"brokers": {"BROKER_PASSWORD": "not-a-secret"}, "mqtt-python": {}}
ONE_SHOT = "mosquitto-init"


def load(name: str) -> dict:
    return yaml.safe_load(COMPOSE_FILES[name].read_text())


def services(name: str) -> dict[str, dict]:
    return load(name)["services"]


def all_services():
    return [pytest.param(name, service, spec, id=f"{name}-{service}")
            for name in COMPOSE_FILES for service, spec in services(name).items()]


def compose_strings(spec) -> list[str]:
    """Every string in a service definition."""
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, dict):
        return [s for value in spec.values() for s in compose_strings(value)]
    if isinstance(spec, list):
        return [s for value in spec for s in compose_strings(value)]
    return []


@pytest.mark.parametrize(("name", "service", "spec"), all_services())
def test_images_are_pinned_or_built_here(name, service, spec):
    if "build" in spec:
        assert "image" not in spec
        return
    image = spec["image"]
    assert re.fullmatch(r"[\w.-]+:\d+\.\d+\.\d+(-\w+)?", image), f"{service}: {image} not pinned"
    assert image in (DEFAULT_RABBITMQ_IMAGE, DEFAULT_MOSQUITTO_IMAGE), \
        f"{service}: {image} is not the image mqkit itself runs"


@pytest.mark.parametrize(("name", "service", "spec"), all_services())
def test_ports_are_published_on_loopback_only(name, service, spec):
    for port in spec.get("ports", []):
        assert isinstance(port, str), f"{service}: use the short form 127.0.0.1:HOST:CONTAINER"
        assert port.startswith("127.0.0.1:"), f"{service}: {port} is reachable from the network"


@pytest.mark.parametrize(("name", "service", "spec"), all_services())
def test_long_running_services_have_a_healthcheck(name, service, spec):
    if service == ONE_SHOT or spec.get("restart") == "no":
        return
    test = spec["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert len(test) >= 2


@pytest.mark.parametrize(("name", "service", "spec"), all_services())
def test_dependencies_wait_for_health_or_completion(name, service, spec):
    others = services(name)
    for dependency, condition in spec.get("depends_on", {}).items():
        wanted = ("service_completed_successfully" if dependency == ONE_SHOT
                  else "service_healthy")
        assert condition == {"condition": wanted}, f"{service} -> {dependency}"
        if wanted == "service_healthy":
            assert "healthcheck" in others[dependency]


@pytest.mark.parametrize(("name", "service", "spec"), all_services())
def test_container_side_dollars_are_escaped(name, service, spec):
    # Compose substitutes $VAR and ${VAR} itself; a shell in the container needs $$VAR.
    for key in ("command", "healthcheck"):
        for text in compose_strings(spec.get(key, [])):
            assert "$" not in text.replace("$$", ""), f"{service} {key}: {text}"


@pytest.mark.parametrize(("name", "service", "spec"), all_services())
def test_credentials_come_from_the_environment_and_are_never_guest(name, service, spec):
    environment = spec.get("environment", {})
    for variable, value in environment.items():
        assert "guest" not in str(value).lower()
        if "PASS" in variable:
            assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), \
                f"{service}: {variable} must come from the environment, with no default"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_mounted_files_exist(name):
    for service, spec in services(name).items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_FILES[name].parent / source).is_file(), f"{service}: {source}"


def test_both_brokers_are_in_the_brokers_file():
    images = {spec["image"] for spec in services("brokers").values()}
    assert images == {DEFAULT_RABBITMQ_IMAGE, DEFAULT_MOSQUITTO_IMAGE}


def test_mosquitto_configs_require_a_password():
    for config in (DOCKER / "compose" / "mosquitto.conf", EXAMPLE / "mosquitto.conf"):
        lines = config.read_text().splitlines()
        assert "allow_anonymous false" in lines
        assert "password_file /mosquitto/auth/passwd" in lines
        assert "listener 1883" in lines


def test_producer_and_consumer_wait_for_a_healthy_broker():
    example = services("mqtt-python")
    for role in ("producer", "consumer"):
        assert example[role]["depends_on"]["mosquitto"] == {"condition": "service_healthy"}
        assert example[role]["environment"]["MQTT_HOST"] == "mosquitto"
    # The producer also waits until the consumer has subscribed (its healthcheck).
    assert example["producer"]["depends_on"]["consumer"] == {"condition": "service_healthy"}
    ready = example["consumer"]["environment"]["READY_FILE"]
    assert example["consumer"]["healthcheck"]["test"] == ["CMD", "test", "-f", ready]


@pytest.mark.parametrize("role", ["producer", "consumer"])
def test_images_build_from_a_pinned_slim_python_and_run_unbuffered(role):
    build = services("mqtt-python")[role]["build"]
    context = EXAMPLE / build["context"]
    dockerfile = (context / build["dockerfile"]).read_text()
    assert build["dockerfile"] == f"Dockerfile-{role}"
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    # The base is an argument (compose.ci.yaml builds on a local stand-in); its default is pinned.
    assert re.fullmatch(r"ARG BASE=python:3\.\d+\.\d+-slim(-\w+)?", instructions[0])
    assert instructions[1] == "FROM ${BASE}"
    assert instructions[-1] == f'CMD ["python", "-u", "{role}.py"]'
    assert any(line.startswith("USER ") for line in instructions), "runs as root"
    for line in instructions:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).is_file(), f"COPY {source}: no such file"


def test_requirements_pin_paho_mqtt_2():
    lines = [line for line in (EXAMPLE / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert len(lines) == 1
    assert re.fullmatch(r"paho-mqtt==2\.\d+\.\d+", lines[0])


def test_env_example_covers_every_variable_the_example_reads():
    text = COMPOSE_FILES["mqtt-python"].read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    example = (EXAMPLE / ".env.example").read_text()
    defined = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert used == defined


@pytest.mark.parametrize("script", ["common.py", "producer.py", "consumer.py"])
def test_scripts_need_only_the_standard_library_and_paho(script):
    tree = ast.parse((EXAMPLE / script).read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    allowed = set(sys.stdlib_module_names) | {"paho", "common"}
    assert modules <= allowed, f"{script} imports {modules - allowed} (not in its image)"


def compose_command() -> list[str] | None:
    """`docker compose` (the v2 plugin) or else a `docker-compose` binary, when installed."""
    candidates = [["docker", "compose"]] if shutil.which("docker") else []
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        probe = subprocess.run([*command, "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return command
    return None


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_docker_compose_accepts_the_file(name, monkeypatch):
    command = compose_command()
    require(command is not None,
            "neither the `docker compose` plugin nor `docker-compose` is installed")
    assert command is not None
    path = COMPOSE_FILES[name]
    env_file = path.parent / ".env.example"
    options = ["--env-file", str(env_file)] if env_file.exists() else []
    for variable, value in COMPOSE_ENV[name].items():
        monkeypatch.setenv(variable, value)
    result = subprocess.run([*command, *options, "-f", str(path), "config", "-q"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# -- compose.ci.yaml: the same example on the host's network ---------------------------------

def ci_services() -> dict[str, dict]:
    return yaml.safe_load(CI_OVERRIDE.read_text())["services"]


def test_ci_override_changes_every_service_and_adds_none():
    assert set(ci_services()) == set(services("mqtt-python"))


def test_ci_override_needs_no_bridge_network():
    for service, spec in ci_services().items():
        wanted = "none" if service == ONE_SHOT else "host"
        assert spec["network_mode"] == wanted, service
        assert "ports" not in spec, service
        assert "networks" not in spec, service


def test_ci_override_points_the_clients_at_the_broker_on_loopback():
    overrides = ci_services()
    port = "${MQTT_CI_PORT:?set MQTT_CI_PORT to a free port}"
    assert overrides["mosquitto"]["environment"]["MQTT_PORT"] == port
    for role in ("producer", "consumer"):
        assert overrides[role]["environment"] == {"MQTT_HOST": "127.0.0.1", "MQTT_PORT": port}
        # The same Dockerfiles, FROM a base chosen by the caller (ARG BASE).
        assert set(overrides[role]["build"]) == {"args", "network"}
        assert overrides[role]["build"]["args"]["BASE"].startswith("${MQTT_CI_BASE:-")
        assert overrides[role]["image"].startswith("mqkit-ci/")


def test_ci_broker_listens_on_loopback_only_with_the_same_config():
    # The override rewrites exactly one line of mosquitto.conf: it must be there, once.
    command = " ".join(ci_services()["mosquitto"]["command"])
    pattern = re.search(r's/\^(listener 1883)\$\$/(listener \$\$MQTT_PORT 127\.0\.0\.1)/', command)
    assert pattern, command
    assert (EXAMPLE / "mosquitto.conf").read_text().splitlines().count(pattern.group(1)) == 1
    health = " ".join(ci_services()["mosquitto"]["healthcheck"]["test"])
    assert '-h 127.0.0.1 -p "$$MQTT_PORT"' in health


def test_ci_override_uses_the_images_mqkit_runs_by_default():
    for service in ("mosquitto-init", "mosquitto"):
        assert ci_services()[service]["image"] == \
            f"${{MQTT_CI_MOSQUITTO_IMAGE:-{DEFAULT_MOSQUITTO_IMAGE}}}"
    dockerfile = (EXAMPLE / "Dockerfile-consumer").read_text()
    default_base = re.search(r"^ARG BASE=(\S+)$", dockerfile, re.MULTILINE).group(1)
    for role in ("producer", "consumer"):
        assert ci_services()[role]["build"]["args"]["BASE"] == \
            f"${{MQTT_CI_BASE:-{default_base}}}"


# -- lecture/: the lecture's choices, shown in lab 10 next to ours ----------------------------

def test_lecture_compose_file_keeps_the_lectures_choices():
    text = (LECTURE / "docker-compose.yml").read_text()
    lecture = yaml.safe_load(text)
    assert lecture["version"] == "3.7"
    assert lecture["services"]["mosquitto"]["image"] == "toke/mosquitto"
    for role in ("producer", "consumer"):
        assert lecture["services"][role]["volumes"] == ["./app:/app"]
        assert lecture["services"][role]["depends_on"] == ["mosquitto"]
    assert "Do not run it" in text


def test_lecture_dockerfile_keeps_the_lectures_base():
    lines = (LECTURE / "Dockerfile-consumer").read_text().splitlines()
    assert "FROM python:3.9-slim-buster" in lines
    assert lines[-1] == 'CMD ["python", "consumer.py"]'


def test_lab_10_shows_the_lecture_files_and_ours():
    lab = (DOCKER.parent / "labs" / "_src" / "10-mqtt.py").read_text()
    for name in ("lecture/docker-compose.yml", "lecture/Dockerfile-consumer", "compose.yaml",
                 "Dockerfile-producer", "Dockerfile-consumer", "compose.ci.yaml"):
        assert f'"{name}"' in lab, f"lab 10 does not print {name}"


def test_docker_compose_accepts_the_ci_override(monkeypatch):
    command = compose_command()
    require(command is not None,
            "neither the `docker compose` plugin nor `docker-compose` is installed")
    assert command is not None
    monkeypatch.setenv("MQTT_CI_PORT", "18830")
    result = subprocess.run([*command, "--env-file", str(EXAMPLE / ".env.example"),
                             "-f", str(COMPOSE_FILES["mqtt-python"]), "-f", str(CI_OVERRIDE),
                             "config", "-q"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_docker_compose_accepts_the_lecture_file():
    # The lecture's file is a valid compose file: what lab 10 corrects is its choices.
    command = compose_command()
    require(command is not None,
            "neither the `docker compose` plugin nor `docker-compose` is installed")
    assert command is not None
    result = subprocess.run([*command, "-f", str(LECTURE / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
