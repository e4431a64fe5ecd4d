"""`mqkit doctor` tells the truth: each verdict comes from the probes a start would run."""

from __future__ import annotations

import pytest

from mqkit.brokers.docker import DockerBackend
from mqkit.brokers.external import ExternalBackend
from mqkit.brokers.process import ProcessBackend
from mqkit.config import Settings
from mqkit.urls import amqp_url, mqtt_url

pytestmark = pytest.mark.integration


def external(**urls: str):
    return ExternalBackend(Settings.from_env(env={}, **urls)).availability()


def test_external_names_the_url_that_is_missing():
    verdict = external(amqp_url="amqp://u:p@127.0.0.1:5672/%2F")
    assert not verdict.is_available
    assert verdict.reason == "MQKIT_MQTT_URL is not set (MQKIT_AMQP_URL is)"
    both = external()
    assert both.reason == "MQKIT_AMQP_URL and MQKIT_MQTT_URL are not set"
    assert "MQKIT_MQTT_URL=mqtt://" in both.hint


def test_external_with_a_wrong_password_is_no(brokers):
    amqp, mqtt = brokers.amqp, brokers.mqtt
    verdict = external(amqp_url=amqp_url(amqp.host, amqp.port, amqp.username, "not-it"),
                       mqtt_url=brokers.mqtt_url)
    assert not verdict.is_available
    assert "refused the login of user 'mqkit'" in verdict.reason
    assert "not-it" not in verdict.reason + verdict.hint
    wrong_mqtt = external(amqp_url=brokers.amqp_url,
                          mqtt_url=mqtt_url(mqtt.host, mqtt.port, mqtt.username, "not-it"))
    assert not wrong_mqtt.is_available
    assert "Mosquitto refused user 'mqkit'" in wrong_mqtt.reason


def test_external_with_working_urls_is_ok(brokers):
    verdict = external(amqp_url=brokers.amqp_url, mqtt_url=brokers.mqtt_url,
                       management_url=brokers.management_url)
    assert verdict.is_available, verdict.reason


def test_process_names_the_missing_binary(tmp_path):
    verdict = ProcessBackend(Settings.from_env(
        env={}, state_dir=tmp_path, mosquitto_binary=str(tmp_path / "no-mosquitto"))
    ).availability()
    assert not verdict.is_available
    assert verdict.reason == "not found: mosquitto"
    assert "MQKIT_MOSQUITTO_BINARY" in verdict.hint


@pytest.mark.docker
def test_docker_without_the_image_and_no_registry_is_no(broker_factory, tmp_path):
    engine = broker_factory("docker", start=False)  # requires an engine and the test images
    image = "mqkit-test/no-such-image:0.0"
    verdict = DockerBackend(Settings.from_env(env={}, state_dir=tmp_path,
                                              rabbitmq_image=image)).availability()
    assert not verdict.is_available
    assert image in verdict.reason
    assert "cannot be pulled" in verdict.reason
    assert "docker load" in verdict.hint
    assert engine.availability().is_available  # the test images are here: ok
