"""MQTT clients: the one place mqkit builds a paho-mqtt 2 client, and how it connects.

* :func:`mqtt_client` builds a paho 2 ``Client`` (callback API version 2) with the
  credentials of an ``mqtt://`` URL;
* :func:`mqtt_connect` connects it, starts paho's loop thread under a registry key (a re-run
  cell stops the previous loop) and waits for a successful CONNACK;
* :func:`raise_for_connack` turns a refused CONNACK into mqkit's error, for every caller.

Example:
    >>> client = mqtt_connect(endpoints, client_id="sensor-1")   # doctest: +SKIP
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mqkit.clients.amqp import HINT_RUNNING
from mqkit.clients.workers import register, unregister
from mqkit.exceptions import (
    AuthenticationError,
    BrokerConnectionError,
    ConfigError,
    DuplicateClientId,
)
from mqkit.mqtt_session import watch_session
from mqkit.urls import BrokerAddress, parse_url

if TYPE_CHECKING:
    import paho.mqtt.client as paho_mqtt

    from mqkit.endpoints import Endpoints


def resolve_mqtt_url(endpoints_or_url: Endpoints | str | None) -> str:
    """The MQTT URL of ``endpoints_or_url`` (:class:`~mqkit.Endpoints` or a URL).

    Raises:
        ConfigError: ``None`` was given (mqkit never starts brokers as a side effect).
    """
    if endpoints_or_url is None or endpoints_or_url == "":
        raise ConfigError("No broker given for this MQTT client.",
                          hint="Start the brokers first: endpoints = mqkit.start_brokers(), "
                               "then pass endpoints.")
    return (endpoints_or_url if isinstance(endpoints_or_url, str)
            else endpoints_or_url.mqtt_url)


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


def mqtt_client(
    endpoints_or_url: Endpoints | str,
    *,
    client_id: str | None = None,
    protocol: int | None = None,
    clean_session: bool | None = None,
) -> paho_mqtt.Client:
    """A paho-mqtt 2 ``Client`` (callback API version 2) with mqkit's credentials set.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints` or an ``mqtt://`` URL (without user name:
            an anonymous client).
        client_id: the MQTT client id (a random ``mqkit-…`` one by default).
        protocol: ``paho.mqtt.client.MQTTv311`` (default) or ``MQTTv5``.
        clean_session: MQTT 3.1.1 clean-session flag (``None``: paho's default).

    Example:
        >>> client = mqtt_client(endpoints, client_id="sensor-1")   # doctest: +SKIP
        >>> mqtt_connect(client=client)                         # doctest: +SKIP
    """
    import paho.mqtt.client as mqtt

    # The only place in mqkit where a paho client is made.
    address = parse_url(resolve_mqtt_url(endpoints_or_url), ("mqtt", "mqtts"), "mqtt_url")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=client_id or f"mqkit-{secrets.token_hex(4)}",
                         protocol=protocol if protocol is not None else mqtt.MQTTv311,
                         clean_session=clean_session)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.is_tls:  # mqtts://: verified against MQKIT_CA_FILE (or the system's CAs)
        from mqkit.clients.tls import tls_context

        client.tls_set_context(tls_context())
    client._mqkit_address = address  # type: ignore[attr-defined]  # read by mqtt_connect
    return client


class MQTTLoop:
    """A connected paho client whose network loop runs in paho's background thread.

    The registry stops it: ``loop_stop`` plus ``disconnect``.
    """

    def __init__(self, client: paho_mqtt.Client, key: str | None) -> None:
        self.client = client
        self.key = key

    def stop(self) -> None:
        """Disconnect and stop paho's loop thread (idempotent)."""
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
        if self.key is not None:
            unregister(self.key, self)


def mqtt_connect(
    endpoints_or_url: Endpoints | str | None = None,
    *,
    client: paho_mqtt.Client | None = None,
    client_id: str | None = None,
    keepalive: int = 60,
    timeout: float = 5.0,
    key: str | None = None,
    on_duplicate: Callable[[DuplicateClientId], None] | None = None,
) -> paho_mqtt.Client:
    """Connect an MQTT client, start its loop thread, and wait for a successful CONNACK.

    Args:
        endpoints_or_url: where to connect (ignored when ``client`` came from
            :func:`mqtt_client`, which remembers its broker).
        client: a client to connect; by default a new one from :func:`mqtt_client`.
        client_id: client id of a new client.
        keepalive: MQTT keep-alive in seconds.
        timeout: seconds to wait for the CONNACK.
        key: registry key (default: the client id); connecting again under the same key (a
            re-run cell) stops the previous loop thread.
        on_duplicate: watch the session (:func:`~mqkit.mqtt_session.watch_session`): when
            another client takes over the same client id, stop reconnecting instead of
            fighting, and call this with the :class:`~mqkit.exceptions.DuplicateClientId`
            (on paho's thread). The watch is ``client._mqkit_watch``.

    Raises:
        AuthenticationError: the broker refused the credentials.
        BrokerConnectionError: no connection or no CONNACK in time.
    """
    if client is None:
        client = mqtt_client(endpoints_or_url, client_id=client_id)
    address: BrokerAddress = getattr(client, "_mqkit_address", None) or parse_url(
        resolve_mqtt_url(endpoints_or_url), ("mqtt", "mqtts"), "mqtt_url")
    where = f"(host={address.host}, port={address.port})"
    answered = threading.Event()
    answer: list[Any] = []
    user_on_connect = client.on_connect

    def on_connect(c: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        answer.append(reason_code)
        answered.set()
        if user_on_connect is not None:
            user_on_connect(c, userdata, flags, reason_code, properties)

    client.on_connect = on_connect
    key = key if key is not None else str(client._client_id.decode() or id(client))
    try:
        client.connect(address.host, address.port, keepalive=keepalive)
    except OSError as exc:
        client.on_connect = user_on_connect
        from mqkit.clients.tls import HINT_CA, is_certificate_error

        raise BrokerConnectionError(f"No MQTT connection {where}: {exc!r}.",
                                    hint=HINT_CA if is_certificate_error(exc)
                                    else HINT_RUNNING) from None
    loop = MQTTLoop(client, key)
    register(key, loop)
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise BrokerConnectionError(f"No CONNACK from the MQTT broker within {timeout} s "
                                        f"{where}.", hint=HINT_RUNNING)
        raise_for_connack(answer[0], address)
    except BaseException:
        loop.stop()
        raise
    finally:
        client.on_connect = user_on_connect
    if on_duplicate is not None:
        client._mqkit_watch = watch_session(  # type: ignore[attr-defined]
            client, on_duplicate=on_duplicate)
    return client
