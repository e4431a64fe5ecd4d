"""Who holds a port: the kernel's TCP tables as mqkit reads them (Linux's /proc/net)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mqkit.brokers.ports import LISTEN, connections_to, tcp_sockets

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(),
                                reason="the kernel's TCP tables are Linux's")


def test_a_listener_and_the_server_ends_of_its_connections_are_counted():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert ("127.0.0.1", port) in (tcp_sockets(LISTEN) or [])
        assert connections_to({port}) == {port: 0}
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            # Each connection has two ends on this machine; only the server's is counted.
            assert connections_to({port}) == {port: 2}
        finally:
            for end in [*clients, *accepted]:
                end.close()
        assert connections_to({port}) == {port: 0}
