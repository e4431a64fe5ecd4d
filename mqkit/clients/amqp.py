"""AMQP connections: the one place mqkit builds a pika connection, with one error mapping.

:func:`amqp_connection` gives a plain pika ``BlockingConnection`` from mqkit's endpoints (or an
``amqp://`` URL), with pika's errors translated into mqkit's exception tree. Readiness probes,
checks, the grader and :class:`~mqkit.clients.notebook.NotebookConnection` all open their
connections through :func:`open_blocking`.

Example:
    >>> connection = amqp_connection(mqkit.start_brokers())   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mqkit.endpoints import Endpoints
from mqkit.exceptions import AuthenticationError, BrokerConnectionError, ConfigError
from mqkit.urls import BrokerAddress, parse_amqp_urls

if TYPE_CHECKING:
    import pika

#: The hint of an unreachable broker.
HINT_RUNNING = "Is the broker running? `mqkit status` shows it; `mqkit up` starts it."


def _require(value: Endpoints | str | None, what: str) -> Endpoints | str:
    # Passing nothing never starts brokers behind the caller's back.
    if value is None or value == "":
        raise ConfigError(f"No broker given for this {what} connection.",
                          hint="Start the brokers first: endpoints = mqkit.start_brokers(), "
                               "then pass endpoints.")
    return value


def resolve_amqp_url(endpoints_or_url: Endpoints | str | None) -> str:
    """The AMQP URL of ``endpoints_or_url`` (:class:`~mqkit.Endpoints` or a URL).

    Raises:
        ConfigError: ``None`` was given (mqkit never starts brokers as a side effect).
    """
    value = _require(endpoints_or_url, "AMQP")
    return value if isinstance(value, str) else value.amqp_url


def where(addresses: list[BrokerAddress]) -> str:
    """``(host=…, port=…, vhost=…)`` for each address, as pika's own errors name a broker."""
    return ", ".join(f"(host={a.host}, port={a.port}, vhost={a.vhost or '/'})"
                     for a in addresses)



@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's own error logs while mqkit connects (it reports failures itself)."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def amqp_parameters(
    endpoints_or_url: Endpoints | str,
    *,
    heartbeat: int | None = None,
    name: str | None = None,
    timeout: float | None = None,
) -> list[pika.URLParameters]:
    """Build pika connection parameters for each (failover) AMQP URL.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints` or an ``amqp://`` URL (commas separate
            failover URLs).
        heartbeat: heartbeat interval in seconds (``None``: the broker's proposal, 60 s).
        name: connection name shown in the management UI.
        timeout: seconds for the socket, the handshake and a blocked connection, with one
            attempt per URL (probes and checks); ``None`` keeps pika's defaults.
    """
    import pika

    url = resolve_amqp_url(endpoints_or_url)
    parse_amqp_urls(url)  # a clear ConfigError for a malformed URL, before pika sees it
    result = []
    for part in (p.strip() for p in url.split(",") if p.strip()):
        parameters = pika.URLParameters(part)
        if parameters.ssl_options is not None:  # amqps://: verified against MQKIT_CA_FILE
            from mqkit.clients.tls import tls_context

            parameters.ssl_options = pika.SSLOptions(tls_context(),
                                                     server_hostname=parameters.host)
        if heartbeat is not None:
            parameters.heartbeat = heartbeat
        parameters.client_properties = {"connection_name": name or "mqkit"}
        if timeout is not None:
            parameters.connection_attempts = 1
            parameters.socket_timeout = parameters.stack_timeout = timeout
            parameters.blocked_connection_timeout = timeout
        result.append(parameters)
    return result


def open_blocking(parameters: list[pika.URLParameters], url: str, *,
                  quiet: bool = False) -> pika.BlockingConnection:
    """Open the BlockingConnection, translating pika's errors into mqkit's.

    The only place in mqkit where a pika connection is made: every caller gets the same
    error mapping. ``quiet`` keeps pika's own error logs out of a probe's output.
    """
    import pika
    import pika.exceptions as pe

    addresses = parse_amqp_urls(url)
    place, user = where(addresses), addresses[0].username
    try:
        if not quiet:
            return pika.BlockingConnection(parameters)
        # pika logs every failed attempt at ERROR; the probe reports the failure itself.
        with _quiet("pika"):
            return pika.BlockingConnection(parameters)
    except pe.ProbableAccessDeniedError as exc:
        raise AuthenticationError(
            f"RabbitMQ refused user {user!r} access to the virtual host {place}: {exc}.",
            hint="The user exists but has no permissions on this vhost; check the vhost in "
                 "the AMQP URL (or grant permissions with mqkit.admin).") from None
    except (pe.ProbableAuthenticationError, pe.AuthenticationError) as exc:
        raise AuthenticationError(
            f"RabbitMQ refused the login of user {user!r} {place}: {exc}.",
            hint="Check the credentials (user name, password and vhost) in the AMQP URL; "
                 "`mqkit status` shows the URL of brokers mqkit started.") from None
    except (pe.AMQPError, OSError) as exc:
        from mqkit.clients.tls import HINT_CA, is_certificate_error

        reason = exc.args[0] if isinstance(exc, pe.AMQPConnectionError) and exc.args else exc
        raise BrokerConnectionError(f"No AMQP connection {place}: {reason!r}.",
                                    hint=HINT_CA if is_certificate_error(exc)
                                    else HINT_RUNNING) from None


def amqp_connection(
    endpoints_or_url: Endpoints | str,
    *,
    heartbeat: int | None = None,
    name: str | None = None,
    timeout: float | None = None,
) -> pika.BlockingConnection:
    """Open a plain pika ``BlockingConnection`` to mqkit's RabbitMQ.

    For a connection that a notebook keeps across cells, prefer :func:`notebook_connection`.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints` or an ``amqp://`` URL.
        heartbeat: heartbeat interval in seconds (``None``: the broker's proposal).
        name: connection name shown in the management UI.
        timeout: see :func:`amqp_parameters`.

    Raises:
        AuthenticationError: wrong user name, password or vhost.
        BrokerConnectionError: the broker cannot be reached.

    Example:
        >>> connection = amqp_connection(mqkit.start_brokers())   # doctest: +SKIP
        >>> channel = connection.channel()                          # doctest: +SKIP
    """
    url = resolve_amqp_url(endpoints_or_url)
    return open_blocking(amqp_parameters(url, heartbeat=heartbeat, name=name, timeout=timeout),
                         url)


def connection_errors() -> tuple[type[BaseException], ...]:
    """The pika errors that mean the connection itself is gone (not a refused command)."""
    import pika.exceptions as pe

    return (pe.AMQPConnectionError, pe.ConnectionWrongStateError)
