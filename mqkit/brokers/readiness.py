"""Readiness probes: an authenticated AMQP handshake, an MQTT CONNACK, a management answer.

A broker is ready when all three succeed; mqkit never sleeps a fixed time instead. Each probe
raises :class:`~mqkit.exceptions.AuthenticationError` when credentials are refused (waiting
will not help) and :class:`~mqkit.exceptions.BrokerConnectionError` for anything that may
pass by itself (refused port, a broker still booting).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

from mqkit.brokers.base import Endpoints
from mqkit.exceptions import (
    AuthenticationError,
    BrokerConnectionError,
    BrokerExited,
    BrokerTimeout,
)
from mqkit.urls import BrokerAddress

log = logging.getLogger(__name__)

#: How often a not-yet-ready broker is probed again.
POLL_INTERVAL = 0.1


def probe_amqp(address: BrokerAddress, timeout: float = 3.0) -> None:
    """Open and close one authenticated AMQP connection."""
    import pika
    import pika.exceptions

    params = pika.ConnectionParameters(
        host=address.host, port=address.port, virtual_host=address.vhost or "/",
        credentials=pika.PlainCredentials(address.username or "", address.password or ""),
        connection_attempts=1, socket_timeout=timeout, stack_timeout=timeout,
        blocked_connection_timeout=timeout)
    where = f"(host={address.host}, port={address.port}, vhost={address.vhost or '/'})"
    try:
        with _quiet("pika"):
            connection = pika.BlockingConnection(params)
    except (pika.exceptions.ProbableAuthenticationError,
            pika.exceptions.ProbableAccessDeniedError,
            pika.exceptions.AuthenticationError) as exc:
        raise AuthenticationError(
            f"RabbitMQ refused user {address.username!r} {where}: {exc!r}.",
            hint="Check the user name, password and vhost in the AMQP URL "
                 "(mqkit status shows the URL of brokers mqkit started).") from None
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise BrokerConnectionError(f"No AMQP connection {where}: {exc!r}.",
                                    hint="Is the broker running? Try `mqkit status`.") from exc
    connection.close()


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's own error logs while mqkit probes (it reports failures itself)."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def probe_mqtt(address: BrokerAddress, timeout: float = 3.0) -> None:
    """Connect with credentials and wait for a successful CONNACK."""
    import paho.mqtt.client as mqtt

    where = f"(host={address.host}, port={address.port})"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"mqkit-probe-{secrets.token_hex(4)}")
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.is_tls:
        client.tls_set()
    answer: list[object] = []
    client.on_connect = lambda _c, _u, _f, reason_code, _p: answer.append(reason_code)
    try:
        client.connect(address.host, address.port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not answer and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    except OSError as exc:
        raise BrokerConnectionError(f"No MQTT connection {where}: {exc!r}.",
                                    hint="Is the broker running? Try `mqkit status`.") from exc
    finally:
        client.disconnect()
    if not answer:
        raise BrokerConnectionError(f"No CONNACK from the MQTT broker within {timeout} s {where}.",
                                    hint="Is the broker running? Try `mqkit status`.")
    raise_for_connack(answer[0], address)


def raise_for_connack(reason: object, address: BrokerAddress) -> None:
    """Raise the mqkit error a refused CONNACK means; return quietly on success.

    Args:
        reason: paho's reason code from ``on_connect``.
        address: the broker, named in the error.
    """
    if not getattr(reason, "is_failure", False):
        return
    where = f"(host={address.host}, port={address.port})"
    # MQTT 3.1.1 codes 4/5 and MQTT 5 codes 134/135: bad credentials, not authorized.
    if getattr(reason, "value", None) in (4, 5, 134, 135):
        raise AuthenticationError(
            f"Mosquitto refused user {address.username!r} {where}: {reason}.",
            hint="Check the user name and password in the MQTT URL.")
    raise BrokerConnectionError(f"Mosquitto refused the connection {where}: {reason}.")


def probe_management(address: BrokerAddress, timeout: float = 3.0) -> None:
    """Ask the management API for ``/api/overview`` with basic auth."""
    url = f"{address.scheme}://{address.host}:{address.port}/api/overview"
    request = urllib.request.Request(url)
    token = base64.b64encode(f"{address.username}:{address.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise AuthenticationError(
                f"The management API refused user {address.username!r} "
                f"(HTTP {exc.code} from {url}).",
                hint="Check the credentials in the management URL; the user needs a "
                     "management tag.") from None
        raise BrokerConnectionError(f"The management API answered HTTP {exc.code} ({url}).",
                                    hint="The broker may still be starting.") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise BrokerConnectionError(f"No answer from the management API at {url}: {exc}.",
                                    hint="Is the broker running with the management "
                                         "plugin? Try `mqkit status`.") from exc


def probe_all(endpoints: Endpoints, timeout: float = 3.0) -> None:
    """Run every probe once; raise the first failure."""
    probe_amqp(endpoints.amqp, timeout)
    probe_mqtt(endpoints.mqtt, timeout)
    if endpoints.management is not None:
        probe_management(endpoints.management, timeout)


def wait_until_ready(
    probe: Callable[[], None],
    *,
    what: str,
    backend: str,
    timeout: float,
    exited: Callable[[], str | None] = lambda: None,
    logs: Callable[[], str] = lambda: "",
) -> float:
    """Call ``probe`` until it passes; return the seconds it took.

    Args:
        probe: raises :class:`BrokerConnectionError` while the broker is not ready.
        what: the broker, for messages (``RabbitMQ``).
        backend: the backend name, for messages.
        timeout: seconds before :class:`BrokerTimeout`.
        exited: returns a description when the broker has died (then waiting stops).
        logs: returns the last log lines, quoted in errors.

    Raises:
        BrokerTimeout: not ready in time.
        BrokerExited: ``exited`` reported the broker gone.
        AuthenticationError: the broker refused the credentials.
    """
    start = time.monotonic()
    deadline = start + timeout
    last: Exception | None = None
    while True:
        try:
            probe()
            elapsed = time.monotonic() - start
            log.debug("%s (%s backend) answered after %.1f s", what, backend, elapsed)
            return elapsed
        except AuthenticationError:
            raise
        except BrokerConnectionError as exc:
            last = exc
        gone = exited()
        if gone:
            raise BrokerExited(
                f"{what} ({backend} backend) stopped while starting: {gone}.\n"
                f"Last log lines:\n{logs() or '(no log)'}",
                hint="Read the log lines above; `mqkit doctor` checks the usual causes.")
        if time.monotonic() >= deadline:
            raise BrokerTimeout(
                f"{what} ({backend} backend) was not ready after {timeout:.0f} s; last probe: "
                f"{last.message if isinstance(last, BrokerConnectionError) else last}.\n"
                f"Last log lines:\n{logs() or '(no log)'}",
                hint="A slow machine may need more time: set MQKIT_STARTUP_TIMEOUT=120; "
                     "`mqkit doctor` checks the usual causes.")
        time.sleep(POLL_INTERVAL)
