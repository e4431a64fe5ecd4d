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


def test_a_notebook_connection_moves_to_the_next_node_when_its_node_goes(brokers,
                                                                       broker_factory):
    """Two nodes in the URL list; the one in use stops; the next use lands on the other."""
    import time

    from mqkit.admin import Admin

    first = broker_factory("process")
    first_endpoints = first.start()
    url = f"{first_endpoints.amqp_url},{brokers.amqp_url}"
    connection = mqkit.notebook_connection(url, name="failover-move")
    try:
        channel = connection.channel()
        channel.queue_declare(queue="failover.move", exclusive=True)
        names = [c.get("client_properties", {}).get("connection_name")
                 for c in Admin(first_endpoints).connections()]
        deadline = time.monotonic() + 15  # the management API lists it within a stats round
        while "failover-move" not in names and time.monotonic() < deadline:
            time.sleep(0.5)
            names = [c.get("client_properties", {}).get("connection_name")
                     for c in Admin(first_endpoints).connections()]
        assert "failover-move" in names  # on the first node
        first.stop()
        deadline = time.monotonic() + 15  # the keep-alive sees the node close the connection
        while connection.is_open and time.monotonic() < deadline:
            time.sleep(0.2)
        declared = channel.queue_declare(queue="failover.move", exclusive=True)
        assert declared.method.message_count == 0
        assert connection.reconnects == 1
        channel.confirm_delivery()
        channel.basic_publish("", "failover.move", b"on the second node")  # confirmed
        method, _, body = channel.basic_get("failover.move", auto_ack=True)
        assert method is not None
        assert body == b"on the second node"
        second = [c for c in Admin(brokers).connections()
                  if c.get("client_properties", {}).get("connection_name") == "failover-move"]
        deadline = time.monotonic() + 15
        while not second and time.monotonic() < deadline:
            time.sleep(0.5)
            second = [c for c in Admin(brokers).connections()
                      if c.get("client_properties", {}).get("connection_name") ==
                      "failover-move"]
        assert second  # now on the second node
    finally:
        connection.close()
