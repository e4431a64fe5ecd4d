"""A sandboxed kernel's only way out: its broker ports, relayed over Unix sockets.

The user sandbox runs the kernel in a network namespace of its own, whose loopback reaches
nothing of the machine's: not PostgreSQL, not Redis, not the grader's Jupyter, not another
submission's kernel. Its brokers are still at ``127.0.0.1:<port>``, as the kernel's URLs say:

* inside, :func:`serve_inside` (run as ``python -m mqkit.grading.relay``, as the sandbox
  user) listens on ``127.0.0.1:<port>`` for each broker port and carries every connection to
  a Unix socket in the session's folder;
* outside, :class:`OutsideRelay` (a thread of the grader) accepts on those Unix sockets and
  connects to the real ``127.0.0.1:<port>``.

A Unix socket is a file, so it crosses the network namespace; only the ports the grader
relays are reachable. The kernel's own ZMQ sockets use Unix sockets the same way.

The docker sandbox does the same for a container with ``network_mode="none"``: the session's
folder is mounted into it, and the inside half runs there by path (``python -I relay.py``),
which is why this module imports nothing of mqkit.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

#: Bytes moved per read.
CHUNK = 65536


def socket_path(folder: Path, port: int) -> Path:
    """Where the relay of ``port`` listens in the session's folder."""
    return folder / f"relay-{port}.sock"


def pid_file(folder: Path) -> Path:
    """Where the inside relay writes its process id."""
    return folder / "relay.pid"


def _pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy both ways until either side closes; then close both."""
    selector = selectors.DefaultSelector()
    selector.register(one, selectors.EVENT_READ, other)
    selector.register(other, selectors.EVENT_READ, one)
    try:
        while True:
            for key, _ in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(CHUNK)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        selector.close()
        for side in (one, other):
            with contextlib.suppress(OSError):
                side.close()


def _accept_loop(server: socket.socket, connect: Callable[[], socket.socket],
                 stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            client, _ = server.accept()
        except OSError:
            return
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()


class OutsideRelay:
    """The grader's half: Unix sockets in ``folder`` that lead to ``127.0.0.1:<port>``.

    Args:
        folder: the session's folder (the kernel's side reaches it).
        ports: the broker ports to relay.
        owner: ``(uid, gid)`` that may connect (the sandbox user).
    """

    def __init__(self, folder: Path, ports: Iterable[int], owner: tuple[int, int]) -> None:
        self.stop = threading.Event()
        self.servers: list[socket.socket] = []
        for port in sorted(set(ports)):
            path = socket_path(folder, port)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(path))
            os.chown(path, *owner)
            os.chmod(path, 0o600)
            server.listen(64)
            self.servers.append(server)

            def connect(port: int = port) -> socket.socket:
                return socket.create_connection(("127.0.0.1", port), timeout=10)

            threading.Thread(target=_accept_loop, args=(server, connect, self.stop),
                             name=f"mqkit-relay-{port}", daemon=True).start()

    def close(self) -> None:
        """Stop accepting (connections under way end with the kernel)."""
        self.stop.set()
        for server in self.servers:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                server.close()


def serve_inside(folder: Path, ports: Sequence[int]) -> None:
    """The kernel's half: listen on ``127.0.0.1:<port>`` and lead each to its Unix socket.

    Binds every port first, then forks: the parent returns (so the sandbox's wrapper goes on
    to start the kernel only once the ports answer) and the child serves until it is killed.
    """
    servers = []
    for port in ports:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        servers.append((server, port))
    if os.fork():
        return
    os.setsid()
    # The sweep after the run kills this process too; it does not count it as the
    # submission's leftover.
    pid_file(folder).write_text(str(os.getpid()))
    stop = threading.Event()
    threads = []
    for server, port in servers:
        def connect(port: int = port) -> socket.socket:
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.connect(str(socket_path(folder, port)))
            return unix

        thread = threading.Thread(target=_accept_loop, args=(server, connect, stop),
                                  daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    os._exit(0)


if __name__ == "__main__":  # python -m mqkit.grading.relay (or python -I relay.py) FOLDER PORT...
    serve_inside(Path(sys.argv[1]), [int(port) for port in sys.argv[2:]])
