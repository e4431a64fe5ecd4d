"""The docker backend against a real Docker Engine (host networking, as on CI machines).

Images: ``MQKIT_TEST_RABBITMQ_IMAGE`` / ``MQKIT_TEST_MOSQUITTO_IMAGE`` (set by
``scripts/broker-images.sh``: official images, or local stand-ins where no registry answers).
"""

from __future__ import annotations

import subprocess
import uuid

import pika
import pytest

from mqkit.brokers.docker import LABEL, DockerBackend
from mqkit.brokers.ports import is_listening
from mqkit.brokers.readiness import probe_amqp, probe_mqtt
from mqkit.config import Settings
from mqkit.exceptions import AuthenticationError, ImageUnavailable
from mqkit.urls import BrokerAddress
from tests.helpers import docker_test_settings, mqtt_round_trip, require

pytestmark = [pytest.mark.docker, pytest.mark.integration]


def docker_settings(state_dir, **overrides) -> Settings:
    return Settings.from_env(env={}, state_dir=state_dir, backend="docker",
                             **(docker_test_settings() | overrides))


@pytest.fixture(scope="module")
def docker_backend(broker_factory):
    backend = broker_factory("docker")
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def engine(docker_backend):
    return docker_backend.client()


def test_round_trips_and_labels(docker_backend, engine):
    endpoints = docker_backend.start()
    assert endpoints.backend == "docker"
    connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
    channel = connection.channel()
    queue = f"test-{uuid.uuid4().hex}"
    channel.queue_declare(queue, exclusive=True)
    channel.basic_publish("", queue, b"through docker")
    assert channel.basic_get(queue, auto_ack=True)[2] == b"through docker"
    connection.close()
    assert mqtt_round_trip(endpoints.mqtt, f"docker/{uuid.uuid4().hex}") == b"hello mqtt"

    containers = engine.containers.list(
        filters={"label": f"{LABEL}.instance={docker_backend.instance}"})
    assert sorted(c.labels[f"{LABEL}.broker"] for c in containers) == ["mosquitto", "rabbitmq"]
    for container in containers:
        assert container.labels[f"{LABEL}.managed"] == "true"
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert container.image.tags[0] in (docker_backend.settings.rabbitmq_image,
                                           docker_backend.settings.mosquitto_image)


def test_guest_and_anonymous_refused(docker_backend):
    endpoints = docker_backend.start()
    amqp, mqtt = endpoints.amqp, endpoints.mqtt
    with pytest.raises(AuthenticationError):
        probe_amqp(BrokerAddress("amqp", amqp.host, amqp.port, "guest", "guest", "/"))
    with pytest.raises(AuthenticationError):
        probe_mqtt(BrokerAddress("mqtt", mqtt.host, mqtt.port, None, None))


def test_listeners_on_loopback_only(docker_backend, engine):
    endpoints = docker_backend.start()
    state = docker_backend.store.load()
    ours = {str(p) for p in state.ports.values()}
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    seen = [line.split()[3] for line in out.splitlines()
            if line.split()[3].rsplit(":", 1)[1] in ours]
    assert {a.rsplit(":", 1)[1] for a in seen} >= {str(endpoints.amqp.port),
                                                    str(endpoints.mqtt.port)}
    assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::1]") for a in seen), seen


def test_running_containers_are_reused(docker_backend, engine):
    endpoints = docker_backend.start()
    ids = sorted(c.id for c in engine.containers.list(
        filters={"label": f"{LABEL}.instance={docker_backend.instance}"}))
    again = DockerBackend(docker_backend.settings)
    assert again.running() == endpoints
    assert again.start() == endpoints
    assert ids == sorted(c.id for c in engine.containers.list(
        filters={"label": f"{LABEL}.instance={docker_backend.instance}"}))


def test_restart_keeps_durable_messages_and_kill_revives(docker_backend):
    endpoints = docker_backend.start()
    queue = f"durable-{uuid.uuid4().hex}"
    connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"survives", pika.BasicProperties(delivery_mode=2))
    connection.close()

    assert docker_backend.restart("rabbitmq") == endpoints
    connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
    assert connection.channel().basic_get(queue, auto_ack=True)[2] == b"survives"
    connection.close()

    docker_backend.kill("mosquitto")
    assert not is_listening(endpoints.mqtt.port)
    assert docker_backend.start() == endpoints
    assert is_listening(endpoints.mqtt.port)


def test_missing_image_without_registry(engine, tmp_path):
    backend = DockerBackend(docker_settings(
        tmp_path, rabbitmq_image="mqkit-test/no-such-rabbitmq:0.0.1"))
    with pytest.raises(ImageUnavailable, match=r"mqkit-test/no-such-rabbitmq:0\.0\.1") as info:
        backend.start()
    assert "MQKIT_RABBITMQ_IMAGE" in str(info.value)
    assert "--backend process" in str(info.value)
    assert not backend.has_state()


def test_down_leaves_nothing(engine, tmp_path):
    backend = DockerBackend(docker_settings(tmp_path))
    endpoints = backend.start()
    volumes_before = {v.name for v in engine.volumes.list()}
    names = [backend.container_name(b) for b in ("rabbitmq", "mosquitto")]
    container_volumes = {m["Name"] for n in names
                         for m in engine.containers.get(n).attrs["Mounts"] if m.get("Name")}
    assert sorted(backend.stop()) == ["mosquitto", "rabbitmq"]
    assert engine.containers.list(all=True, filters={"label": f"{LABEL}.instance="
                                                              f"{backend.instance}"}) == []
    assert not is_listening(endpoints.amqp.port)
    assert not is_listening(endpoints.mqtt.port)
    assert not (container_volumes & {v.name for v in engine.volumes.list()})
    assert container_volumes <= volumes_before
    assert not backend.has_state()


def test_auto_falls_back_to_processes_when_docker_cannot_run_the_brokers(engine, tmp_path):
    from mqkit.brokers.launcher import start_brokers, stop_brokers
    from mqkit.brokers.process import ProcessBackend

    settings = {"state_dir": tmp_path, "rabbitmq_image": "mqkit-test/no-such-rabbitmq:0.0.1"}
    require(ProcessBackend(Settings.from_env(env={}, state_dir=tmp_path)).availability()
            .is_available, "the process backend is not available either")
    try:
        endpoints = start_brokers("auto", **settings)
        assert endpoints.backend == "process"
        assert DockerBackend(Settings.from_env(env={}, state_dir=tmp_path)).has_state() is False
    finally:
        stop_brokers("auto", **settings)
