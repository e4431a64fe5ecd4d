"""Several AMQP URLs (a cluster's nodes): the first that answers is used, everywhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mqkit
from mqkit.brokers.launcher import broker_status
from mqkit.urls import amqp_url

pytestmark = pytest.mark.integration


@pytest.fixture
def failover_env(brokers, monkeypatch):
    amqp = brokers.amqp
    down = amqp_url(amqp.host, 1, amqp.username, amqp.password)  # nothing listens on port 1
    url = f"{down},{brokers.amqp_url}"
    monkeypatch.setenv("MQKIT_BACKEND", "external")
    monkeypatch.setenv("MQKIT_AMQP_URL", url)
    monkeypatch.setenv("MQKIT_MQTT_URL", brokers.mqtt_url)
    monkeypatch.setenv("MQKIT_MANAGEMENT_URL", brokers.management_url)
    return url


def test_start_brokers_and_connections_survive_a_first_node_that_is_down(failover_env):
    endpoints = mqkit.start_brokers()
    assert endpoints.amqp_url == failover_env
    connection = mqkit.notebook_connection(endpoints, name="failover-test")
    try:
        assert connection.channel().queue_declare(queue="", exclusive=True).method.queue
    finally:
        connection.close()


def test_status_names_the_node_that_is_down(failover_env):
    report = broker_status()
    rabbit = report["brokers"][0]
    assert rabbit.is_running
    assert "port=1" in rabbit.detail
    assert "answers at amqp://" in rabbit.detail
    assert report["endpoints"] is not None


def test_mqkit_up_with_a_failover_list(failover_env):
    import os

    result = subprocess.run([sys.executable, "-m", "mqkit", "up", "--json"], text=True,
                            capture_output=True, env=dict(os.environ), timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert '"backend": "external"' in result.stdout


def test_every_node_down_is_still_an_error(brokers, monkeypatch):
    amqp = brokers.amqp
    monkeypatch.setenv("MQKIT_BACKEND", "external")
    monkeypatch.setenv("MQKIT_AMQP_URL", ",".join(
        amqp_url(amqp.host, port, amqp.username, amqp.password) for port in (1, 2)))
    monkeypatch.setenv("MQKIT_MQTT_URL", brokers.mqtt_url)
    with pytest.raises(mqkit.BrokerConnectionError) as info:
        mqkit.start_brokers()
    assert "port=1" in str(info.value)
    assert "port=2" in str(info.value)
