"""``mqkit classroom create --cluster-nodes``: a department cluster's other nodes, checked."""

from __future__ import annotations

import pytest

from mqkit.classroom import parse_nodes
from mqkit.exceptions import ConfigError


def test_nodes_are_kept_in_order_with_their_ports():
    assert parse_nodes("mq2.example.edu:5672, mq3.example.edu:05673") == [
        "mq2.example.edu:5672", "mq3.example.edu:5673"]
    assert parse_nodes("[::1]:5672") == ["[::1]:5672"]


@pytest.mark.parametrize("text", ["mq2.example.edu", "mq2:", ":5672", "mq2:0", "mq2:65536",
                                  "mq2:amqp", "amqp://mq2:5672", "mq2:5672,,mq3:5672",
                                  "::1:5672"])
def test_a_node_that_is_not_host_and_port_is_refused_with_an_example(text):
    with pytest.raises(ConfigError, match=r"is not HOST:PORT") as raised:
        parse_nodes(text)
    assert "--cluster-nodes mq2.example.edu:5672,mq3.example.edu:5672" in raised.value.hint
