"""A security self-check of the brokers mqkit talks to.

Brokers for a course run on laptops and shared lab machines; three mistakes matter most:

1. a listener reachable from the network (RabbitMQ's AMQP, management or Erlang
   distribution port; Mosquitto's MQTT port) instead of loopback only;
2. RabbitMQ's ``guest``/``guest`` account accepted (the official image lets it in from
   anywhere);
3. Mosquitto accepting anonymous clients.

:func:`check_security` looks at the running brokers — the management API's list of
listeners, the kernel's table of listening sockets, and a real login attempt each as
``guest`` and as an anonymous MQTT client — and returns what is wrong as
:class:`Finding` objects; an empty list means all three checks passed.

Example:
    >>> for finding in check_security(mqkit.start_brokers()):     # doctest: +SKIP
    ...     print(finding)
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mqkit.brokers.ports import LISTEN, tcp_sockets
from mqkit.urls import BrokerAddress, amqp_url

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One problem found by :func:`check_security`.

    Attributes:
        check: ``listener``, ``guest`` or ``anonymous-mqtt``.
        broker: ``rabbitmq`` or ``mosquitto``.
        detail: what was seen.
        hint: how to fix it.
    """

    check: str
    broker: str
    detail: str
    hint: str

    def __str__(self) -> str:
        return f"✘ {self.broker} {self.check}: {self.detail}\n  Hint: {self.hint}"


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listening_addresses(port: int) -> list[str] | None:
    """Local addresses listening on TCP ``port`` (from /proc/net); None when unknown."""
    sockets = tcp_sockets(LISTEN)
    return None if sockets is None else [address for address, p in sockets if p == port]


def _check_listeners(broker: str, ports: dict[str, int]) -> list[Finding]:
    findings = []
    for what, port in ports.items():
        addresses = _listening_addresses(port)
        if addresses is None:
            log.info("cannot list listening sockets here; %s port %s not checked", what, port)
            continue
        for address in addresses:
            if not ipaddress.ip_address(address).is_loopback:
                findings.append(Finding(
                    "listener", broker,
                    f"the {what} port {port} listens on {address}, reachable from the network",
                    "Bind it to 127.0.0.1 (brokers mqkit starts do; check the config of a "
                    "broker started by hand, and publish Docker ports on 127.0.0.1 only)."))
    return findings


def _rabbitmq_listener_ports(endpoints: Endpoints) -> dict[str, int]:
    ports = {"AMQP": endpoints.amqp.port}
    if endpoints.management is not None:
        ports["management"] = endpoints.management.port
        try:
            from mqkit.admin import Admin

            overview: Any = Admin(endpoints).overview()
            for listener in overview.get("listeners", []):
                name = f"{listener.get('protocol', '?')} listener"
                ports.setdefault(name, int(listener["port"]))
        except Exception as exc:  # the API's view is a bonus; the AMQP/HTTP ports remain
            log.info("management API listeners not read: %r", exc)
    return ports


def _guest_accepted(address: BrokerAddress) -> bool:
    from mqkit.clients import amqp_connection
    from mqkit.exceptions import AuthenticationError, BrokerConnectionError

    url = amqp_url(address.host, address.port, "guest", "guest", address.vhost or "/")
    try:
        connection = amqp_connection(url, name="mqkit-security-check")
    except AuthenticationError:
        return False
    except BrokerConnectionError as exc:
        # 3.x closes the socket on a refused login; pika then reports a lost connection.
        log.info("guest login attempt ended with %r (counted as refused)", exc)
        return False
    connection.close()
    return True


def _anonymous_mqtt_accepted(address: BrokerAddress, timeout: float) -> bool:
    from mqkit.clients.mqtt import mqtt_client

    anonymous = BrokerAddress(address.scheme, address.host, address.port, None, None)
    client = mqtt_client(anonymous.url(), client_id=f"mqkit-security-{secrets.token_hex(4)}")
    answered = threading.Event()
    accepted: list[bool] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        accepted.append(not reason_code.is_failure)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError:
        return False
    client.loop_start()
    try:
        answered.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return bool(accepted and accepted[0])


def check_security(endpoints: Endpoints, *, timeout: float = 5.0) -> list[Finding]:
    """Check the brokers of ``endpoints``; return the problems found (empty: all good).

    Args:
        endpoints: the :class:`~mqkit.Endpoints` to check.
        timeout: seconds to wait for an MQTT CONNACK.

    Returns:
        One :class:`Finding` per problem: a listener off loopback, ``guest`` let in, an
        anonymous MQTT client let in.
    """
    findings: list[Finding] = []
    for broker, address in (("rabbitmq", endpoints.amqp), ("mosquitto", endpoints.mqtt)):
        if not _is_loopback(address.host):
            findings.append(Finding(
                "listener", broker, f"the endpoint is {address.host}, not loopback",
                "Fine for a classroom broker behind TLS and real accounts; for a local "
                "broker use 127.0.0.1."))
    if _is_loopback(endpoints.amqp.host):
        findings += _check_listeners("rabbitmq", _rabbitmq_listener_ports(endpoints))
    if _is_loopback(endpoints.mqtt.host):
        findings += _check_listeners("mosquitto", {"MQTT": endpoints.mqtt.port})
    if _guest_accepted(endpoints.amqp):
        findings.append(Finding(
            "guest", "rabbitmq", "the guest/guest account logged in",
            "Delete the guest user (rabbitmqctl delete_user guest) or set "
            "loopback_users.guest = true; mqkit's brokers create their own user."))
    if _anonymous_mqtt_accepted(endpoints.mqtt, timeout):
        findings.append(Finding(
            "anonymous-mqtt", "mosquitto", "an MQTT client without user name was accepted",
            "Set allow_anonymous false and a password_file in mosquitto.conf."))
    return findings
