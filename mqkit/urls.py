"""Broker URLs: parsing and building the three endpoint forms mqkit hands out.

* AMQP: ``amqp://user:pass@host:port/vhost`` (``%2F`` is the default vhost ``/``), as read
  by pika's ``URLParameters``. Several URLs separated by commas are failover alternatives.
* MQTT: ``mqtt://user:pass@host:port`` (``mqtts://`` for TLS).
* Management: ``http://user:pass@host:port`` of RabbitMQ's management API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from mqkit.exceptions import ConfigError

_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "mqtt": 1883, "mqtts": 8883,
                  "http": 15672, "https": 15671}


@dataclass(frozen=True)
class BrokerAddress:
    """The parts of one broker URL.

    Attributes:
        scheme: ``amqp``, ``amqps``, ``mqtt``, ``mqtts``, ``http`` or ``https``.
        host: host name or address.
        port: TCP port (the scheme's default when the URL has none).
        username: user name, or ``None``.
        password: password, or ``None``.
        vhost: AMQP virtual host (``/`` by default); empty for other schemes.
    """

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    vhost: str = ""

    @property
    def is_tls(self) -> bool:
        """True for ``amqps``, ``mqtts`` and ``https``."""
        return self.scheme.endswith("s") and self.scheme != "mqtt"

    def url(self) -> str:
        """The URL again, with its credentials (and the vhost for AMQP)."""
        user = ""
        if self.username is not None:
            user = quote(self.username, safe="")
            if self.password is not None:
                user += ":" + quote(self.password, safe="")
            user += "@"
        path = "/" + quote(self.vhost or "/", safe="") if self.scheme.startswith("amqp") else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}{path}"

    def redacted(self) -> str:
        """The URL with the password replaced by ``***`` (safe for logs and errors)."""
        user = f"{self.username}:***@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def parse_url(url: str, schemes: tuple[str, ...], variable: str = "URL") -> BrokerAddress:
    """Parse one broker URL, refusing anything malformed with a clear error.

    Args:
        url: the URL to parse.
        schemes: the schemes accepted, e.g. ``("amqp", "amqps")``.
        variable: where the URL came from, named in the error (e.g. ``MQKIT_AMQP_URL``).

    Raises:
        ConfigError: the scheme, host or port is missing or invalid.
    """
    example = f"{schemes[0]}://user:password@127.0.0.1:{_DEFAULT_PORTS[schemes[0]]}"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{variable} is not a valid URL: {_redact(url)!r} ({exc}).",
                          hint=f"Use the form {example}.") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            f"{variable} has scheme {parts.scheme or '(none)'!r} in {_redact(url)!r}; "
            f"expected {' or '.join(schemes)}.", hint=f"Use the form {example}.")
    if not parts.hostname:
        raise ConfigError(f"{variable} has no host: {_redact(url)!r}.",
                          hint=f"Use the form {example}.")
    vhost = ""
    if parts.scheme.startswith("amqp"):
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        vhost = unquote(path) if path else "/"
    return BrokerAddress(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        vhost=vhost,
    )


def parse_amqp_urls(value: str, variable: str = "MQKIT_AMQP_URL") -> list[BrokerAddress]:
    """Parse one AMQP URL, or several separated by commas (failover alternatives)."""
    urls = [part for part in value.split(",") if part.strip()]
    if not urls:
        raise ConfigError(f"{variable} is empty.",
                          hint="Use the form amqp://user:password@127.0.0.1:5672/%2F.")
    return [parse_url(url, ("amqp", "amqps"), variable) for url in urls]


def amqp_url(host: str, port: int, username: str, password: str, vhost: str = "/") -> str:
    """Build an AMQP URL that pika's ``URLParameters`` reads back exactly."""
    return (f"amqp://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}/"
            f"{quote(vhost, safe='')}")


def mqtt_url(host: str, port: int, username: str, password: str) -> str:
    """Build an ``mqtt://user:pass@host:port`` URL."""
    return f"mqtt://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}"


def http_url(host: str, port: int, username: str, password: str) -> str:
    """Build a management API URL with basic-auth credentials."""
    return f"http://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}"


def _redact(url: str) -> str:
    """Hide a password in a URL that may not even parse."""
    return re.sub(r":[^:@/]+@", ":***@", url)
