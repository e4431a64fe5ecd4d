"""The RabbitMQ management UI inside JupyterLab, through jupyter-server-proxy.

JupyterLab shows a launcher tile "RabbitMQ management" that opens
``<jupyter>/rabbitmq-management/``. Behind it, jupyter-server-proxy runs
``python -m mqkit.jupyter_proxy --port {port}``: a small loopback TCP forwarder that looks
up, for each connection, where the management API of the brokers mqkit uses is now (they
may start after JupyterLab, from lab 00's first cell, and move after a restart). While no
broker runs, it answers with a short page that says how to start them.

The forwarder also repairs two things the proxy does to requests for the management API
(``/api/...``), see :func:`rewrite_request_head`:

* **HTTP 412 after login.** Tornado puts an ``Etag`` of its own on every proxied 200 answer
  to a GET; the browser then revalidates with ``If-None-Match``, and RabbitMQ's API (cowboy
  REST handlers that compute no etag) answers any ``If-None-Match`` with 412 Precondition
  Failed. The forwarder drops ``If-None-Match`` on API requests; Tornado still compares the
  browser's ``If-None-Match`` with the fresh answer and sends 304 when nothing changed.
* **The default vhost ``%2F``.** The proxy decodes ``%2F`` in paths to ``/`` and does not
  encode it again, so ``/api/queues/%2F/q`` arrives as ``/api/queues///q`` (404). A segment
  ``/`` shows as two empty segments in a row; the forwarder turns them back into ``%2F``.
  (Names that themselves contain ``/`` cannot be recovered; the default vhost can.)

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
    from mqkit.brokers.launcher import broker_status

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
        await asyncio.gather(_forward_requests(reader, up_writer), _pipe(up_reader, writer))


def restore_default_vhost(target: str) -> str:
    """Put back the ``%2F`` (vhost ``/``) that the proxy decoded in an API request target.

    Args:
        target: the request target as it reached the forwarder (path and query).

    Returns:
        The target with each pair of empty path segments replaced by ``%2F``; targets
        outside ``/api/`` unchanged.

    Example:
        >>> restore_default_vhost("/api/queues///orders?columns=name")
        '/api/queues/%2F/orders?columns=name'
        >>> restore_default_vhost("/api/bindings///e//q/orders")  # source: default exchange
        '/api/bindings/%2F/e//q/orders'
        >>> restore_default_vhost("/api/queues/")
        '/api/queues/'
    """
    path, sep, query = target.partition("?")
    if not path.startswith("/api/"):
        return target
    segments = path.split("/")
    restored: list[str] = []
    i = 0
    while i < len(segments):
        if i > 0 and segments[i] == "" and i + 1 < len(segments) and segments[i + 1] == "":
            restored.append("%2F")
            i += 2
        else:
            restored.append(segments[i])
            i += 1
    return "/".join(restored) + sep + query


def rewrite_request_head(head: bytes) -> tuple[bytes, int | None]:
    r"""Repair one HTTP request head for the management API (see the module docstring).

    Args:
        head: the request line and headers, up to and including the blank line.

    Returns:
        The head to send on, and the length of the body that follows it (``None`` when it
        cannot be known from the head: chunked, or a protocol upgrade).

    Example:
        >>> head = b"GET /api/queues//?x=1 HTTP/1.1\r\nIf-None-Match: \"a1\"\r\nHost: h\r\n\r\n"
        >>> rewrite_request_head(head)
        (b'GET /api/queues/%2F?x=1 HTTP/1.1\r\nHost: h\r\n\r\n', 0)
    """
    request_line, *lines = head.rstrip(b"\r\n").split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) == 3:
        target = restore_default_vhost(parts[1].decode("latin-1"))
        parts[1] = target.encode("latin-1")
        request_line = b" ".join(parts)
    is_api = len(parts) == 3 and parts[1].startswith(b"/api/")
    kept = [request_line]
    length: int | None = 0
    length_unknown = False
    for line in lines:
        name = line.partition(b":")[0].strip().lower()
        if is_api and name == b"if-none-match":
            continue
        if name == b"content-length":
            try:
                length = int(line.partition(b":")[2].strip())
            except ValueError:
                length_unknown = True
        elif name in (b"transfer-encoding", b"upgrade"):
            length_unknown = True
        kept.append(line)
    return b"\r\n".join(kept) + b"\r\n\r\n", None if length_unknown else length


async def _forward_requests(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Client to management API: each request head repaired, its body copied as is."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                writer.write(exc.partial)  # the client closed (maybe mid-head): pass it on
                break
            except asyncio.LimitOverrunError:
                await _copy(reader, writer)  # a huge head: not HTTP we can repair
                break
            head, body_length = rewrite_request_head(head)
            writer.write(head)
            if body_length is None:
                await _copy(reader, writer)  # chunked or upgraded: the rest as it comes
                break
            while body_length > 0:
                chunk = await reader.read(min(body_length, 65536))
                if not chunk:
                    return
                writer.write(chunk)
                await writer.drain()
                body_length -= len(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


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
