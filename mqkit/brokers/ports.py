"""Loopback ports: pick free ones, refuse taken ones with a clear error, read who holds them."""

from __future__ import annotations

import ipaddress
import random
import socket
from pathlib import Path

from mqkit.exceptions import PortInUseError

LOOPBACK = "127.0.0.1"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = LOOPBACK) -> int:
    """A port that is free on ``host`` right now.

    Chosen below the kernel's ephemeral range when possible: a port from that range can be
    taken by any outgoing connection between now and the moment the broker binds it.
    """
    low, _high = _ephemeral_range()
    if low > 20000:
        for _ in range(50):
            port = random.randint(20000, low - 1)
            if is_port_free(port, host):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on ``host:port`` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def choose_ports(requested: dict[str, int], host: str = LOOPBACK) -> dict[str, int]:
    """Resolve port requests: ``0`` becomes a free port, others must be free.

    Args:
        requested: port name (``amqp``, ``mqtt``, ...) -> number, 0 for "any".
        host: the address the ports are for.

    Raises:
        PortInUseError: a requested non-zero port is taken.
    """
    chosen: dict[str, int] = {}
    for name, port in requested.items():
        if port and not is_port_free(port, host):
            raise PortInUseError(
                f"The {name} port {host}:{port} is already in use.",
                hint=f"Stop what listens there (`ss -ltnp 'sport = :{port}'` shows it), or "
                     f"set MQKIT_{name.upper()}_PORT=0 to let mqkit pick a free port.")
        chosen[name] = port
    taken = set(chosen.values())
    for name, port in chosen.items():
        if not port:
            while (port := free_port(host)) in taken:
                pass
            chosen[name] = port
            taken.add(port)
    return chosen


#: TCP states as ``/proc/net/tcp`` writes them.
LISTEN, ESTABLISHED = "0A", "01"


def tcp_sockets(state: str) -> list[tuple[str, int]] | None:
    """``(local address, local port)`` of this network namespace's TCP sockets in ``state``.

    Read from ``/proc/net/tcp`` and ``tcp6`` (Linux); ``None`` where they do not exist.
    An IPv4 address mapped into IPv6 is given as IPv4.
    """
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    found: list[tuple[str, int]] = []
    readable = False
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != state:
                continue
            address, _, port_hex = fields[1].rpartition(":")
            raw = bytes.fromhex(address)
            # /proc stores each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(words)
            mapped = getattr(ip, "ipv4_mapped", None)
            found.append((str(mapped or ip), int(port_hex, 16)))
    return found if readable else None


def connections_to(ports: set[int]) -> dict[int, int] | None:
    """How many established TCP connections each of ``ports`` serves on this machine.

    Counts the server's end only (local port in ``ports``), so a client on the same machine
    is counted once. ``None`` where the kernel's tables cannot be read.
    """
    sockets = tcp_sockets(ESTABLISHED)
    if sockets is None:
        return None
    counts = dict.fromkeys(ports, 0)
    for _address, port in sockets:
        if port in counts:
            counts[port] += 1
    return counts
