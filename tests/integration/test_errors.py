"""Bad input gets an mqkit error that says what failed, what was seen, and what to do."""

from __future__ import annotations

import socket

import pytest

import mqkit
from mqkit.brokers.docker import DockerBackend
from mqkit.brokers.ports import free_port
from mqkit.brokers.process import ProcessBackend
from mqkit.config import Settings
from mqkit.exceptions import (
    AuthenticationError,
    BackendUnavailable,
    BrokerConnectionError,
    BrokerExited,
    ConfigError,
    NoBackendError,
    PortInUseError,
)
from mqkit.urls import amqp_url, mqtt_url
from tests.helpers import require

pytestmark = pytest.mark.integration


def test_unknown_backend():
    with pytest.raises(ConfigError, match="Unknown backend 'rabbit'") as info:
        mqkit.start_brokers(backend="rabbit")
    assert "auto, external, docker, process" in str(info.value)


def test_malformed_external_url(monkeypatch):
    monkeypatch.setenv("MQKIT_AMQP_URL", "amqp//user:pw@host")
    monkeypatch.setenv("MQKIT_MQTT_URL", "mqtt://user:pw@127.0.0.1:1")
    with pytest.raises(ConfigError, match="MQKIT_AMQP_URL") as info:
        mqkit.start_brokers()
    assert "pw" not in info.value.message


def test_wrong_credentials_in_external_urls(brokers, monkeypatch):
    amqp, mqtt = brokers.amqp, brokers.mqtt
    monkeypatch.setenv("MQKIT_AMQP_URL", amqp_url(amqp.host, amqp.port, "mqkit", "not-it"))
    monkeypatch.setenv("MQKIT_MQTT_URL", brokers.mqtt_url)
    with pytest.raises(AuthenticationError, match=f"port={amqp.port}") as info:
        mqkit.start_brokers()
    assert "Hint:" in str(info.value)
    monkeypatch.setenv("MQKIT_AMQP_URL", brokers.amqp_url)
    monkeypatch.setenv("MQKIT_MQTT_URL", mqtt_url(mqtt.host, mqtt.port, "mqkit", "not-it"))
    with pytest.raises(AuthenticationError, match="Mosquitto refused"):
        mqkit.start_brokers()
    monkeypatch.setenv("MQKIT_MQTT_URL", brokers.mqtt_url)
    assert mqkit.start_brokers().backend == "external"


def test_external_broker_not_running(monkeypatch):
    port = free_port()
    monkeypatch.setenv("MQKIT_AMQP_URL", amqp_url("127.0.0.1", port, "u", "p"))
    monkeypatch.setenv("MQKIT_MQTT_URL", mqtt_url("127.0.0.1", port, "u", "p"))
    with pytest.raises(BrokerConnectionError, match=f"port={port}") as info:
        mqkit.start_brokers()
    assert "Is the broker running?" in str(info.value)


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        backend = ProcessBackend(Settings.from_env(env={}, state_dir=tmp_path, amqp_port=port))
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}") as info:
            backend.start()
    assert "MQKIT_AMQP_PORT=0" in str(info.value)
    assert not backend.has_state()


def test_missing_binary(tmp_path):
    settings = Settings.from_env(env={}, state_dir=tmp_path,
                                 rabbitmq_server="/nonexistent/rabbitmq-server")
    backend = ProcessBackend(settings)
    assert not backend.availability().is_available
    with pytest.raises(BackendUnavailable, match="rabbitmq-server") as info:
        backend.start()
    assert "apt-get install rabbitmq-server" in str(info.value)


def test_docker_socket_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    backend = DockerBackend(Settings.from_env(env={}, state_dir=tmp_path))
    availability = backend.availability()
    assert not availability.is_available
    assert "No Docker engine answers" in availability.reason
    with pytest.raises(BackendUnavailable, match="No Docker engine") as info:
        backend.start()
    assert "--backend process" in str(info.value)


def test_no_backend_at_all_lists_every_way(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("MQKIT_RABBITMQ_SERVER", "/nonexistent/rabbitmq-server")
    monkeypatch.setenv("MQKIT_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(NoBackendError) as info:
        mqkit.start_brokers()
    message = str(info.value)
    assert "docker: No Docker engine answers" in message
    assert "process: not found: rabbitmq-server" in message
    assert "MQKIT_AMQP_URL" in message


def test_broker_exits_during_start(tmp_path):
    backend = ProcessBackend(Settings.from_env(env={}, state_dir=tmp_path))
    require(backend.availability().is_available, backend.availability().reason)
    backend.start()
    try:
        backend.kill("rabbitmq")
        # A hand-edited config that RabbitMQ cannot parse: the real broker exits at boot.
        conf = backend.store.dir / "rabbitmq" / "rabbitmq.conf"
        conf.write_text(conf.read_text() + "\nthis line = = is not valid\n")
        with pytest.raises(BrokerExited, match=r"RabbitMQ \(process backend\) stopped while "
                                               r"starting") as info:
            backend.start()
        assert "Last log lines:" in str(info.value)
        assert "Hint:" in str(info.value)
    finally:
        backend.stop()


def test_bad_memory_setting_is_refused_before_starting():
    with pytest.raises(ConfigError, match="MQKIT_RABBITMQ_MEMORY"):
        Settings.from_env(env={"MQKIT_RABBITMQ_MEMORY": "plenty"})
