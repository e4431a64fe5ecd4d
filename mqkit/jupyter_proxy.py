"""The RabbitMQ management UI inside JupyterLab, through jupyter-server-proxy.

JupyterLab shows a launcher tile "RabbitMQ management" that opens
``<jupyter>/rabbitmq-management/``. Behind it, jupyter-server-proxy runs
``python -m mqkit.jupyter_proxy --port {port}``: a small loopback TCP forwarder that looks
up, for each connection, where the management API of the brokers mqkit uses is now (they
may start after JupyterLab, from lab 00's first cell, and move after a restart). While no
broker runs, it answers with a short page that says how to start them.

Registered in ``pyproject.toml`` under ``[project.entry-points.jupyter_serverproxy_servers]``.

Example:
    >>> setup_rabbitmq_management()["launcher_entry"]["title"]
    'RabbitMQ management'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

#: The path under the Jupyter server's base URL.
PROXY_NAME = "rabbitmq-management"
#: How long a looked-up management address is reused (a page load opens many connections).
_CACHE_SECONDS = 2.0
_NO_BROKER_PAGE = (
    "<!doctype html><title>RabbitMQ management</title>"
    "<h1>No RabbitMQ is running yet</h1>"
    "<p>Run the first cell of lab 00 (<code>mqkit.start_brokers()</code>) or "
    "<code>mqkit up</code> in a terminal, then reload this page.</p>"
    "<p>Log in with the user and password from <code>endpoints.management_url</code>.</p>"
)


def setup_rabbitmq_management() -> dict[str, Any]:
    """The jupyter-server-proxy server definition (the entry point's target).

    Returns:
        A ``ServerProcess`` configuration: the forwarder's command and the launcher tile.
    """
    return {
        "command": [sys.executable, "-m", "mqkit.jupyter_proxy", "--port", "{port}"],
        "timeout": 20,
        "absolute_url": False,
        "new_browser_tab": True,
        "launcher_entry": {"enabled": True, "title": "RabbitMQ management"},
    }


def management_address() -> tuple[str, int] | None:
    """Host and port of the management API of the brokers mqkit uses now, or ``None``."""
    from mqkit.launcher import broker_status

    try:
        endpoints = broker_status()["endpoints"]
    except Exception as exc:  # any trouble reading the state means "no broker to show"
        log.info("no management address: %r", exc)
        return None
    if endpoints is None or endpoints.management is None:
        return None
    return endpoints.management.host, endpoints.management.port


class _Forwarder:
    """Forwards each accepted connection to the current management address."""

    def __init__(self) -> None:
        self._cached: tuple[float, tuple[str, int] | None] = (0.0, None)

    async def _target(self) -> tuple[str, int] | None:
        stamp, address = self._cached
        if time.monotonic() - stamp > _CACHE_SECONDS:
            address = await asyncio.to_thread(management_address)
            self._cached = (time.monotonic(), address)
        return address

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection."""
        address = await self._target()
        upstream = None
        if address is not None:
            try:
                upstream = await asyncio.open_connection(*address)
            except OSError as exc:
                log.info("management API at %s:%s refused: %r", *address, exc)
                self._cached = (0.0, None)
        if upstream is None:
            await _answer_no_broker(reader, writer)
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _answer_no_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read the request head first, so the client does not see a reset.
    with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError,
                             asyncio.LimitOverrunError, ConnectionError):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    body = _NO_BROKER_PAGE.encode()
    writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n"
                 b"Cache-Control: no-store\r\nConnection: close\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


async def serve(port: int, host: str = "127.0.0.1") -> None:
    """Run the forwarder on ``host:port`` until cancelled."""
    server = await asyncio.start_server(_Forwarder().handle, host, port)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mqkit.jupyter_proxy --port N`` (started by jupyter-server-proxy)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
