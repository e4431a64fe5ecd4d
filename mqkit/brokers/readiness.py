"""Readiness probes: an authenticated AMQP handshake, an MQTT CONNACK, a management answer.

A broker is ready when all three succeed; mqkit never sleeps a fixed time instead. A broker
mqkit starts must also pass :func:`probe_direct_reply_to` (one request/reply round trip), so
lab 08's first direct reply-to answer is never lost to a broker still finishing its boot. Each probe
raises :class:`~mqkit.exceptions.AuthenticationError` when credentials are refused (waiting
will not help) and :class:`~mqkit.exceptions.BrokerConnectionError` for anything that may
pass by itself (refused port, a broker still booting).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from mqkit.clients.amqp import amqp_parameters, open_blocking
from mqkit.clients.management import ManagementClient
from mqkit.clients.mqtt import mqtt_client, raise_for_connack
from mqkit.endpoints import Endpoints
from mqkit.exceptions import (
    AuthenticationError,
    BrokerConnectionError,
    BrokerExited,
    BrokerTimeout,
    ConfigError,
)
from mqkit.urls import BrokerAddress

log = logging.getLogger(__name__)

#: How often a not-yet-ready broker is probed again.
POLL_INTERVAL = 0.1
#: How often a port that is still closed is tried while its broker boots. A refused TCP
#: connect costs microseconds where a full probe costs milliseconds of CPU that the booting
#: broker wants, so the port is watched closely and probed once it opens.
PORT_POLL_INTERVAL = 0.01


def probe_amqp(address: BrokerAddress, timeout: float = 3.0) -> None:
    """Open and close one authenticated AMQP connection."""
    probe_amqp_url(address.url(), timeout)


def probe_amqp_url(url: str, timeout: float = 3.0) -> None:
    """Open and close one authenticated AMQP connection to the first URL that answers.

    ``url`` may hold several comma-separated URLs (a cluster's nodes): they are tried in
    turn, as pika does for failover; the probe fails only when none accepts.
    """
    open_blocking(amqp_parameters(url, name="mqkit-probe", timeout=timeout), url,
                  quiet=True).close()


#: The pseudo-queue of RabbitMQ's direct reply-to.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
#: How long the readiness round trip waits for its answer before asking again.
REPLY_WAIT = 0.5


def probe_direct_reply_to(address: BrokerAddress, timeout: float = 3.0) -> None:
    """Send one request with direct reply-to to a private queue, answer it, get the answer.

    Why: RabbitMQ accepts AMQP connections and answers its management API a moment before it
    has finished booting. In that moment RabbitMQ 4.0.5 drops a direct reply-to answer
    silently (seen here on six boots out of six, right after AMQP and the management API
    answered; never after 0.25 s, never on 4.3.6): its channel code forwards an answer only
    to a channel on a node it lists as running. A lost answer is retried by the caller after
    :data:`REPLY_WAIT` seconds; a second one was never lost.
    """
    import pika
    import pika.exceptions as pe

    url = address.url()
    connection = open_blocking(amqp_parameters(url, name="mqkit-probe", timeout=timeout), url,
                               quiet=True)
    try:
        channel = connection.channel()
        answers: list[bytes] = []
        channel.basic_consume(DIRECT_REPLY_TO, lambda _c, _m, _p, body: answers.append(body),
                              auto_ack=True)
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.basic_publish("", queue, b"ping", pika.BasicProperties(reply_to=DIRECT_REPLY_TO))
        # One channel: the broker handles the publish before the get, so the request is there.
        _method, properties, _body = channel.basic_get(queue, auto_ack=True)
        if properties is None or not properties.reply_to:
            raise BrokerConnectionError("RabbitMQ lost the readiness probe's request.",
                                        hint="The broker may still be starting.")
        channel.basic_publish("", properties.reply_to, b"pong")
        deadline = time.monotonic() + REPLY_WAIT
        while not answers and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
    except pe.AMQPError as exc:
        raise BrokerConnectionError(f"RabbitMQ's direct reply-to probe failed: {exc!r}.",
                                    hint="The broker may still be starting.") from None
    finally:
        if connection.is_open:
            with contextlib.suppress(pe.AMQPError, OSError):
                connection.close()
    if not answers:
        raise BrokerConnectionError(
            f"RabbitMQ did not deliver a direct reply-to answer within {REPLY_WAIT} s.",
            hint="The broker may still be finishing its boot.")


def probe_mqtt(address: BrokerAddress, timeout: float = 3.0) -> None:
    """Connect with credentials and wait for a successful CONNACK."""
    where = f"(host={address.host}, port={address.port})"
    client = mqtt_client(address.url(), client_id=f"mqkit-probe-{secrets.token_hex(4)}")
    answer: list[object] = []
    client.on_connect = lambda _c, _u, _f, reason_code, _p: answer.append(reason_code)
    try:
        client.connect(address.host, address.port, keepalive=10)
        deadline = time.monotonic() + timeout
        # The probe drives paho's loop itself: no thread outlives it.
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


def probe_management(address: BrokerAddress, timeout: float = 3.0) -> None:
    """Ask the management API for ``/api/overview`` with basic auth."""
    try:
        ManagementClient(address, timeout=timeout).get("overview")
    except ConfigError as exc:
        # A 400/404 while the plugin boots is "not yet", not a wrong setting.
        raise BrokerConnectionError(exc.message, hint="The broker may still be starting.") from None


def probe_address(address: BrokerAddress, timeout: float = 3.0, *,
                  serving: bool = False) -> None:
    """Run the probe of ``address``'s scheme (AMQP, MQTT or the management API) once.

    ``serving`` adds :func:`probe_direct_reply_to` to an AMQP probe: the test of a broker
    mqkit has just started, before anyone is told it is ready.
    """
    if serving and address.scheme in ("amqp", "amqps"):
        probe_direct_reply_to(address, timeout)
        return
    probe = {"amqp": probe_amqp, "amqps": probe_amqp, "mqtt": probe_mqtt, "mqtts": probe_mqtt,
             "http": probe_management, "https": probe_management}[address.scheme]
    probe(address, timeout)


def probe_all(endpoints: Endpoints, timeout: float = 3.0) -> None:
    """Run every probe once; raise the first failure (any AMQP failover URL may answer)."""
    probe_amqp_url(endpoints.amqp_url, timeout)
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
    is_open: Callable[[], bool] | None = None,
) -> float:
    """Call ``probe`` until it passes; return the seconds it took.

    Args:
        probe: raises :class:`BrokerConnectionError` while the broker is not ready.
        what: the broker, for messages (``RabbitMQ``).
        backend: the backend name, for messages.
        timeout: seconds before :class:`BrokerTimeout`.
        exited: returns a description when the broker has died (then waiting stops).
        logs: returns the last log lines, quoted in errors.
        is_open: True once the broker's port accepts TCP connections; until then it is
            tried every :data:`PORT_POLL_INTERVAL` instead of probing (``None``: probe at
            once, then every :data:`POLL_INTERVAL`).

    Raises:
        BrokerTimeout: not ready in time.
        BrokerExited: ``exited`` reported the broker gone.
        AuthenticationError: the broker refused the credentials.
    """
    start = time.monotonic()
    deadline = start + timeout
    last: Exception | None = None
    while True:
        if is_open is not None:
            _watch_port(is_open, deadline, exited)
            is_open = None  # a port seen open once is not watched again
        try:
            probe()
            elapsed = time.monotonic() - start
            log.debug("%s (%s backend) answered after %.2f s", what, backend, elapsed)
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


def _watch_port(is_open: Callable[[], bool], deadline: float,
                exited: Callable[[], str | None]) -> None:
    """Wait until ``is_open``, the deadline or the broker's exit (the probe then reports it)."""
    checked = time.monotonic()
    while not is_open():
        now = time.monotonic()
        if now >= deadline:
            break
        if now - checked >= POLL_INTERVAL:  # not every few milliseconds: it reads /proc
            checked = now
            if exited():
                break
        time.sleep(PORT_POLL_INTERVAL)
