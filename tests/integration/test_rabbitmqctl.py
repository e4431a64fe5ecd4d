"""``mqkit.rabbitmqctl_command`` against the real RabbitMQ that mqkit runs as a process.

Lab 01 prints the command for a student to paste into a terminal and runs it to show a
forgotten ack: the printed line, run by a shell, must reach mqkit's own node and see the
same counts as the command run from Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

import mqkit
from mqkit.brokers.cluster import ClusterBackend
from mqkit.config import Settings
from mqkit.exceptions import BackendUnavailable
from tests.helpers import require

pytestmark = pytest.mark.integration

COLUMNS = ("name", "messages_ready", "messages_unacknowledged")


def counts(output: str, queue: str) -> tuple[int, int] | None:
    for line in output.splitlines():
        name, *figures = line.split("\t")
        if name == queue:
            return int(figures[0]), int(figures[1])
    return None


def test_the_command_sees_unacked_messages_and_the_shell_line_is_the_same(
        brokers, broker_state_dir, monkeypatch):
    monkeypatch.setenv("MQKIT_STATE_DIR", str(broker_state_dir))
    monkeypatch.setenv("MQKIT_BACKEND", "process")
    queue = f"ctl-{uuid.uuid4().hex[:8]}"
    command = mqkit.rabbitmqctl_command("list_queues", *COLUMNS)
    assert "ERL_EPMD_PORT=" in command.shell
    assert " -n mqkit-" in command.shell
    connection = mqkit.amqp_connection(brokers, name="test-rabbitmqctl")
    try:
        channel = connection.channel()
        channel.queue_declare(queue=queue, durable=True)
        for number in range(3):
            channel.basic_publish(exchange="", routing_key=queue, body=f"job {number}")
        taken = 0
        for method, _properties, _body in channel.consume(queue, inactivity_timeout=1):
            if method is None:
                break
            taken += 1  # and no ack
        channel.cancel()
        assert taken == 3
        assert counts(command.run(), queue) == (0, 3)
        # What a student pastes into a terminal: a shell line with the node's environment.
        env = {k: v for k, v in os.environ.items() if k not in ("HOME", "ERL_EPMD_PORT")}
        pasted = subprocess.run(["bash", "-c", command.shell], env=env, capture_output=True,
                                text=True, timeout=60, check=False)
        assert pasted.returncode == 0, pasted.stderr
        assert counts(pasted.stdout, queue) == (0, 3)
        channel.close()  # the unacked messages go back to the queue
        assert counts(command.run(), queue) == (3, 0)
    finally:
        connection.channel().queue_delete(queue=queue)
        connection.close()


def test_a_failing_command_says_so(brokers, broker_state_dir, monkeypatch):
    monkeypatch.setenv("MQKIT_STATE_DIR", str(broker_state_dir))
    monkeypatch.setenv("MQKIT_BACKEND", "process")
    with pytest.raises(BackendUnavailable, match="rabbitmqctl exited"):
        mqkit.rabbitmqctl_command("no_such_command").run()


def test_on_a_local_cluster_the_command_names_node_1_and_sees_every_node(
        tmp_path_factory, monkeypatch):
    state_dir = tmp_path_factory.mktemp("mqkit-ctl-cluster")
    backend = ClusterBackend(Settings.from_env(env={}, state_dir=state_dir), 2)
    availability = backend.availability()
    require(availability.is_available, f"process backend: {availability.reason}")
    backend.start()
    try:
        monkeypatch.setenv("MQKIT_STATE_DIR", str(state_dir))
        for name in ("MQKIT_BACKEND", "MQKIT_AMQP_URL", "MQKIT_MQTT_URL"):
            monkeypatch.delenv(name, raising=False)  # auto: finds the cluster's state
        command = mqkit.rabbitmqctl_command("cluster_status", "--formatter", "json")
        assert "-1@" in command.shell
        running = json.loads(command.run())["running_nodes"]
        assert len(running) == 2, running
    finally:
        backend.stop()


def test_an_external_broker_is_not_reachable(monkeypatch):
    monkeypatch.setenv("MQKIT_BACKEND", "external")
    monkeypatch.setenv("MQKIT_AMQP_URL", "amqp://u:p@127.0.0.1:1/%2F")
    monkeypatch.setenv("MQKIT_MQTT_URL", "mqtt://u:p@127.0.0.1:1")
    with pytest.raises(BackendUnavailable, match="external"):
        mqkit.rabbitmqctl_command("list_queues")
