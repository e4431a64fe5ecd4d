"""The cluster's node specs as data: names, ports, peers and processes of each node."""

from __future__ import annotations

import pytest

from mqkit.brokers.cluster import ClusterBackend, node_name, node_spec
from mqkit.brokers.specs import LOOPBACK, Launch
from mqkit.brokers.state import BrokerState
from mqkit.config import Settings
from mqkit.exceptions import ConfigError


def _state() -> BrokerState:
    ports = {"epmd": 4400, "mqtt": 1900}
    for index in (1, 2, 3):
        ports |= {f"amqp-{index}": 5000 + index, f"management-{index}": 6000 + index,
                  f"dist-{index}": 7000 + index}
    return BrokerState(backend="cluster", username="mqkit", password="pw", ports=ports,
                       nodename="mqkit-1-2@localhost",
                       brokers=["rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "mosquitto"])


def _launch(tmp_path, state: BrokerState, index: int) -> Launch:
    return Launch(state, tmp_path / f"rabbitmq-{index}", Settings.from_env(env={}), False,
                  LOOPBACK, state.ports)


def test_each_node_has_its_own_name_ports_and_folder_and_lists_every_peer(tmp_path):
    state = _state()
    for index in (1, 2, 3):
        spec = node_spec(index, 3)
        launch = _launch(tmp_path, state, index)
        conf = spec.files(launch)["rabbitmq.conf"]
        assert f"listeners.tcp.1 = 127.0.0.1:{5000 + index}" in conf
        assert f"management.tcp.port = {6000 + index}" in conf
        assert "cluster_formation.peer_discovery_backend = classic_config" in conf
        for peer in (1, 2, 3):
            assert (f"cluster_formation.classic_config.nodes.{peer} = mqkit-1-2-{peer}@localhost"
                    in conf)
        # Node 1 is started first and looks for running peers briefly; the others wait.
        assert ("discovery_retry_limit" in conf) == (index == 1)
        epmd, server = spec.commands(launch, {"epmd": "epmd", "rabbitmq-server": "rs"})
        assert epmd.name == "epmd"
        assert epmd.argv[-1] == "4400"  # one epmd for all nodes
        assert server.name == f"rabbitmq-{index}"
        assert server.env["RABBITMQ_NODENAME"] == node_name(state, index)
        assert server.env["RABBITMQ_DIST_PORT"] == str(7000 + index)
        assert server.env["ERL_EPMD_PORT"] == "4400"
        assert server.env["ERL_EPMD_ADDRESS"] == LOOPBACK
        assert "inet_dist_use_interface {127,0,0,1}" in server.env[
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
        assert spec.log_files(state)[0] == f"log/mqkit-1-2-{index}@localhost.log"


def test_the_endpoints_list_every_node_and_one_management_api(tmp_path):
    backend = ClusterBackend(Settings.from_env(env={}, state_dir=tmp_path), 3)
    endpoints = backend.endpoints(_state())
    assert [url.rsplit(":", 1)[1] for url in endpoints.amqp_url.split(",")] == [
        "5001/%2F", "5002/%2F", "5003/%2F"]
    assert endpoints.management_url.endswith(":6001")
    assert endpoints.mqtt_url.endswith(":1900")
    assert endpoints.backend == "cluster"


@pytest.mark.parametrize("nodes", [1, 8])
def test_a_cluster_size_out_of_range_is_a_config_error(tmp_path, nodes):
    with pytest.raises(ConfigError, match="Hint:"):
        ClusterBackend(Settings.from_env(env={}, state_dir=tmp_path), nodes)
