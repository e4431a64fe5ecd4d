"""A local 3-node RabbitMQ cluster (``mqkit up --nodes 3``): it forms, replicates quorum queues,
and a lab's connection outlives the node it was on without losing a confirmed message."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest

import mqkit
from mqkit.brokers.cluster import ClusterBackend
from mqkit.clients.management import ManagementClient
from mqkit.config import Settings
from mqkit.exceptions import BrokerStartError
from tests.helpers import require

pytestmark = pytest.mark.integration

#: Durations (start, stop, failover, down): shown with ``-o log_cli=true``.
log = logging.getLogger(__name__)

NODES = 3


def _settings(state_dir: Path, **settings) -> Settings:
    return Settings.from_env(env={}, state_dir=state_dir, **settings)


def _pids_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            alive.append(pid)
    return alive


def _wait(condition, timeout: float, what: str, interval: float = 0.5):
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(interval)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    backend = ClusterBackend(_settings(tmp_path_factory.mktemp("mqkit-cluster")), NODES)
    availability = backend.availability()
    require(availability.is_available, f"process backend: {availability.reason}")
    begun = time.monotonic()
    backend.start()
    log.info(f"3-node cluster started in {time.monotonic() - begun:.1f} s")
    yield backend
    backend.stop()


def _management(backend: ClusterBackend) -> ManagementClient:
    """The management API of the first node that runs."""
    running = next(s.broker for s in backend.status() if s.is_running)
    return ManagementClient(backend.address(backend.store.load(),
                                            running.replace("rabbitmq", "management")))


def _queue_members(backend: ClusterBackend, queue: str):
    info = _management(backend).get(f"queues/%2F/{queue}")
    return sorted(info.get("members") or []), sorted(info.get("online") or [])


def test_the_nodes_form_one_cluster(cluster):
    endpoints = cluster.running()
    assert endpoints is not None
    assert endpoints.backend == "cluster"
    urls = endpoints.amqp_url.split(",")
    assert len(urls) == NODES
    assert len({pika.URLParameters(url).port for url in urls}) == NODES
    nodes = ManagementClient(endpoints).get("nodes")
    assert sorted(n["name"] for n in nodes if n["running"]) == sorted(
        status.detail.rsplit("node ", 1)[1] for status in cluster.status()
        if status.broker.startswith("rabbitmq-"))
    assert len(nodes) == NODES
    assert [s.broker for s in cluster.status()] == ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3",
                                                    "mosquitto"]
    assert all(s.is_running for s in cluster.status())


def test_start_brokers_finds_the_cluster(cluster, monkeypatch):
    monkeypatch.setenv("MQKIT_STATE_DIR", str(cluster.settings.state_dir))
    assert mqkit.start_brokers() == cluster.running()


def test_a_quorum_queue_has_a_member_on_every_node(cluster):
    endpoints = cluster.running()
    connection = mqkit.notebook_connection(endpoints, name="cluster-quorum")
    try:
        channel = connection.channel()
        channel.queue_declare("cluster.quorum", durable=True,
                              arguments={"x-queue-type": "quorum"})
        members, online = _wait(lambda: (lambda m: m if len(m[1]) == NODES else None)(
            _queue_members(cluster, "cluster.quorum")), 30, "three online members")
        assert members == online
        assert len(set(members)) == NODES
        channel.queue_delete("cluster.quorum")
    finally:
        connection.close()


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_lab_connection_outlives_its_node_and_no_confirmed_message_is_lost(cluster, how):
    """Stop (SIGTERM, a maintenance) or kill (SIGKILL, a crash) the node a notebook
    connection is on; its next use lands on another node, with every confirmed message."""
    endpoints = cluster.running()
    admin = _management(cluster)
    queue, name = f"cluster.orders-{how}", f"cluster-failover-{how}"
    connection = mqkit.notebook_connection(endpoints, name=name)
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True,
                              arguments={"x-queue-type": "quorum"})
        channel.confirm_delivery()
        sent = [f"order {n}".encode() for n in range(100)]
        for body in sent:  # each publish returns once the broker confirmed it
            channel.basic_publish("", queue, body,
                                  pika.BasicProperties(delivery_mode=2))

        def node_of_connection():
            found = [c["node"] for c in admin.get("connections")
                     if c.get("client_properties", {}).get("connection_name") == name]
            return found[0] if found else None

        node = _wait(node_of_connection, 15, "the connection in the management API")
        index = next(int(s.broker.rsplit("-", 1)[1]) for s in cluster.status()
                     if s.detail.endswith(f"node {node}"))
        begun = time.monotonic()
        assert cluster.stop_node(index, kill=how == "killed")
        log.info(f"node {index} {how} in {time.monotonic() - begun:.1f} s")
        _wait(lambda: not connection.is_open, 15, "the connection sees its node go")

        begun = time.monotonic()
        declared = channel.queue_declare(queue, durable=True,
                                         arguments={"x-queue-type": "quorum"})
        log.info(f"reconnected and declared in {time.monotonic() - begun:.1f} s")
        assert connection.reconnects == 1
        assert declared.method.message_count == len(sent)
        received = []
        for _ in range(len(sent) + 1):
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            received.append(body)
        assert received == sent

        admin = _management(cluster)
        moved = _wait(lambda: [c["node"] for c in admin.get("connections")
                               if c.get("client_properties", {}).get("connection_name") ==
                               name], 15, "the connection on another node")
        assert node not in moved
    finally:
        connection.close()

    # `mqkit up` again: the node boots with its data and rejoins, and so does its member.
    begun = time.monotonic()
    endpoints = cluster.start()
    log.info(f"node {index} back in {time.monotonic() - begun:.1f} s")
    assert all(s.is_running for s in cluster.status())
    nodes = ManagementClient(endpoints).get("nodes")
    assert sum(1 for n in nodes if n["running"]) == NODES
    _wait(lambda: len(_queue_members(cluster, queue)[1]) == NODES, 30,
          "the queue's member on the node back online")


def test_a_class_on_the_cluster_fails_over_loses_nothing_and_runs_a_lab(cluster,
                                                                       tmp_path_factory):
    """``classroom create`` on the cluster: the cards list every node; 30 simulated students
    lose nothing and never see each other; lab 09 runs with a card (its restart is the
    instructor's there) and passes every self-check."""
    import uuid

    from mqkit.classroom import ClassBroker, Classroom, parse_roster
    from mqkit.classroom.load import run_load
    from tests.helpers import VERDICT, run_notebook_with_card
    from tests.integration.classroom_support import card_of, remove_all

    endpoints = cluster.start()  # every node up, whatever an earlier test did
    broker = ClassBroker.from_endpoints(endpoints)
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    roster = "id,name\n" + "".join(f"s{n:03d},Student {n}\n" for n in range(30))
    classroom = Classroom(tmp_path_factory.mktemp("cluster-class") / "room")
    begun = time.monotonic()
    classroom.create(parse_roster(roster), broker, prefix=prefix, workers=6)
    log.info(f"classroom create for 30 on the cluster in {time.monotonic() - begun:.1f} s")
    try:
        card = card_of(classroom, "s000")
        assert card["MQKIT_AMQP_URL"].count(",") == NODES - 1
        assert card["MQKIT_CLASSROOM_URL"].count(",") == NODES - 1
        report = run_load(classroom.record(), seconds=10, processes=3)
        assert report.errors == {}
        assert report.confirmed >= 30 * 8
        assert (report.lost, report.cross, report.duplicates) == (0, 0, 0)

        path = Path(__file__).resolve().parents[2] / "labs" / "solutions" / \
            "09-guaranteed-delivery.ipynb"
        texts = run_notebook_with_card(path, card_of(classroom, "s001"),
                                       tmp_path_factory.mktemp("kernel-state"))
        verdicts = [t for t in texts if VERDICT.search(t)]
        assert verdicts
        assert all("✔ passed" in t for t in verdicts), verdicts
    finally:
        remove_all(classroom, broker, prefix)


def test_status_and_down_on_the_command_line(cluster):
    env = {**os.environ, "MQKIT_STATE_DIR": str(cluster.settings.state_dir)}
    env.pop("MQKIT_BACKEND", None)
    state = cluster.store.load()
    pids = list(state.pids.values())
    assert len(pids) == NODES + 2  # the nodes, Mosquitto, epmd
    assert len(_pids_alive(pids)) == len(pids)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "mqkit", *args], env=env, text=True,
                              capture_output=True, timeout=180, check=False)

    up = run("up", "--nodes", "3", "--json")  # reuses the running cluster
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["amqp_url"] == cluster.running().amqp_url

    status = run("status")
    assert status.returncode == 0, status.stderr
    for name in ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "mosquitto"):
        assert any(line.split()[:2] == [name, "up"] for line in status.stdout.splitlines()), (
            status.stdout)

    begun = time.monotonic()
    down = run("down")
    log.info(f"mqkit down took {time.monotonic() - begun:.1f} s")
    assert down.returncode == 0, down.stderr
    for name in ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "mosquitto", "epmd"):
        assert f"cluster:{name}" in down.stdout
    assert _pids_alive(pids) == []
    assert cluster.orphans() == []
    assert not cluster.has_state()


def test_a_cluster_that_cannot_get_ready_leaves_nothing_running(tmp_path):
    backend = ClusterBackend(_settings(tmp_path, startup_timeout=2), NODES)
    with pytest.raises(BrokerStartError) as info:
        backend.start()
    assert "RabbitMQ node" in str(info.value)
    assert "Hint:" in str(info.value)
    assert backend.orphans() == []
    assert not backend.store.file.exists()
