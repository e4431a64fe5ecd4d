"""MQTTInbox: live messages of an MQTT subscription, on a paho client of its own.

The client's network loop runs in paho's background thread (``loop_start``). The inbox
records each message in a :class:`~mqkit.widgets.buffer.MessageBuffer` (the last ``limit``
are kept, all are counted); it stops when closed or when another inbox is created under the
same key (a re-run cell), through the worker registry of :mod:`mqkit.clients`. The shared
:class:`~mqkit.widgets.inbox_view.InboxView` is updated from paho's thread by setting widget
values, never with ``with output:``.

Example:
    >>> inbox = MQTTInbox(["sensors/+/temperature", "alerts/#"], endpoints)  # doctest: +SKIP
    >>> inbox.model.wait_for(1, timeout=5)                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import html
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mqkit import clients
from mqkit.exceptions import BrokerConnectionError, ConfigError, DuplicateClientId
from mqkit.routing import topic_matches, validate_topic_filter
from mqkit.widgets.buffer import BufferedModel, MessageBuffer
from mqkit.widgets.inbox_view import InboxView
from mqkit.widgets.mqtt_qos import check_qos

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MQTTMessage:
    """One message an inbox received.

    Attributes:
        seq: its number in the order received (1 = first).
        topic: the topic it was published to.
        payload: the raw payload.
        qos: the QoS it was delivered with (the lower of publish and subscription QoS).
        retain: True when it is a retained message sent because we subscribed.
        dup: True when the broker re-sent it (QoS 1/2 after a lost acknowledgement).
        filters: the inbox's filters that match its topic.
        received_at: when the inbox recorded it.
    """

    seq: int
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    filters: tuple[str, ...] = ()
    received_at: datetime.datetime = field(default_factory=datetime.datetime.now)

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (undecodable bytes replaced)."""
        return self.payload.decode("utf-8", errors="replace")


def _filter_list(filters: str | Sequence[str | tuple[str, int]], qos: int) -> list[tuple[str, int]]:
    items = [filters] if isinstance(filters, str) else list(filters)
    result = []
    for item in items:
        topic_filter, item_qos = (item, qos) if isinstance(item, str) else item
        validate_topic_filter(topic_filter)
        result.append((topic_filter, check_qos(item_qos)))
    if not result:
        raise ConfigError("An MQTT inbox needs at least one topic filter.",
                          hint="Pass a filter, e.g. MQTTInbox('sensors/#').")
    return result


class MQTTInboxModel(BufferedModel[MQTTMessage]):
    """A subscription on a paho client of its own, with bounded memory.

    Args:
        filters: a topic filter, or several; an item may be ``(filter, qos)``.
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``mqtt://`` URL, or ``None``.
        qos: the subscription QoS of filters given without one.
        limit: how many of the latest messages :attr:`received` keeps.
        key: registry key; starting another inbox under the same key (a re-run cell) stops
            this one. Default: ``mqtt-inbox:`` and the filters.
        client_id: the client id (random by default; give a fixed one together with
            ``clean_session=False`` for a persistent session).
        clean_session: MQTT 3.1.1 clean-session flag; False keeps the subscription, and the
            QoS 1/2 messages published meanwhile, while the inbox is stopped.
        on_message: called with each :class:`MQTTMessage` in paho's thread, after it is
            recorded (keep it short).

    Attributes:
        received: a copy of the last ``limit`` messages, oldest first.
        count: how many messages were received in total.
        error: the last error (a refused subscription, a lost connection), or ``None``.
        granted: the QoS the broker granted for each filter (after the SUBACK).
        buffer: the :class:`~mqkit.widgets.buffer.MessageBuffer` the messages go to.
    """

    def __init__(self, filters: str | Sequence[str | tuple[str, int]],
                 endpoints_or_url: Endpoints | str | None = None, *, qos: int = 1,
                 limit: int = 20, key: str | None = None, client_id: str | None = None,
                 clean_session: bool = True,
                 on_message: Callable[[MQTTMessage], None] | None = None) -> None:
        self.filters = _filter_list(filters, qos)
        self.url = clients.resolve_mqtt_url(endpoints_or_url)
        self.limit = limit
        self.key = key or "mqtt-inbox:" + ",".join(f for f, _ in self.filters)
        self.client_id = client_id or f"mqkit-inbox-{secrets.token_hex(4)}"
        self.clean_session = clean_session
        self.on_message = on_message
        self.buffer: MessageBuffer[MQTTMessage] = MessageBuffer(limit, name=self.key)
        self.error: BaseException | None = None
        self.granted: dict[str, int] = {}
        self.client: Any = None
        self._loop: clients.Stoppable | None = None
        self._subscribed = threading.Event()
        self._is_running = False

    @property
    def is_running(self) -> bool:
        """True from :meth:`start` until :meth:`stop`."""
        return self._is_running

    def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe, and return once the broker acknowledged the subscription.

        Raises:
            AuthenticationError: the broker refused the credentials.
            BrokerConnectionError: no connection, or no SUBACK within ``timeout``.
            ConfigError: the broker refused a filter.
        """
        if self._is_running:
            return
        clients.register(self.key, self)  # stops an older inbox of the same key first
        self.error = None
        self._subscribed.clear()
        client = clients.mqtt_client(self.url, client_id=self.client_id,
                                     clean_session=self.clean_session)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self.client = client
        loop_key = f"mqtt-loop:{self.client_id}:{secrets.token_hex(3)}"
        try:
            clients.mqtt_connect(client=client, timeout=timeout, key=loop_key,
                                 on_duplicate=self._on_duplicate)
        except BaseException:
            clients.unregister(self.key, self)
            raise
        self._loop = clients.workers().get(loop_key)
        self._is_running = True
        if not self._subscribed.wait(timeout) and self.error is None:
            self.error = BrokerConnectionError(
                f"No SUBACK for {self._filters_text()} within {timeout} s.",
                hint="Is the broker running? Try `mqkit status`.")
        if self.error is not None:
            error = self.error
            self.stop()
            self.error = error
            raise error
        self.buffer.notify(force=True)

    def stop(self) -> None:
        """Disconnect and stop paho's loop thread; the kept messages stay (idempotent)."""
        self._is_running = False
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()
        elif self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        clients.unregister(self.key, self)
        self.buffer.notify(force=True)  # also cancels a pending trailing notification

    def matching_filters(self, topic: str) -> tuple[str, ...]:
        """The inbox's filters that match ``topic`` (from :func:`mqkit.routing.topic_matches`)."""
        return tuple(f for f, _ in self.filters if topic_matches(f, topic))

    def _filters_text(self) -> str:
        return ", ".join(f for f, _ in self.filters)

    # -- paho callbacks (paho's thread) ----------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if not reason_code.is_failure:
            # On every (re)connect: a clean session forgets its subscriptions.
            client.subscribe(self.filters)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        refused = [f for (f, _), code in zip(self.filters, reason_codes, strict=False)
                   if code.is_failure]
        if refused:
            self.error = ConfigError(f"The broker refused the subscription to "
                                     f"{', '.join(refused)}.",
                                     hint="Check the filters and the user's ACL.")
        self.granted = {f: code.value for (f, _), code in
                        zip(self.filters, reason_codes, strict=False) if not code.is_failure}
        self._subscribed.set()

    def _on_duplicate(self, error: DuplicateClientId) -> None:
        # Another client took this client id: the watch stopped paho's reconnecting.
        self.error = error
        self.buffer.notify(force=True)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        if self._is_running and not isinstance(self.error, DuplicateClientId):
            self.error = BrokerConnectionError(f"lost the connection ({reason_code}); paho "
                                               "reconnects by itself")
            self.buffer.notify(force=True)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        record = self.buffer.append(lambda seq: MQTTMessage(
            seq=seq, topic=message.topic, payload=message.payload, qos=message.qos,
            retain=bool(message.retain), dup=bool(message.dup),
            filters=self.matching_filters(message.topic)))
        if type(self.error) is BrokerConnectionError:
            self.error = None  # a message arrived, so paho reconnected
        if self.on_message is not None:
            try:
                self.on_message(record)
            except Exception:
                log.exception("MQTT inbox %s: on_message failed", self.key)
        self.buffer.notify()


def format_mqtt_message(message: MQTTMessage, width: int = 120) -> str:
    """One line for a message: number, topic, QoS, flags and the start of the payload."""
    text = message.text.replace("\n", " ")
    if len(text) > width:
        text = text[: width - 1] + "…"
    flags = "".join([" retained" if message.retain else "", " dup" if message.dup else ""])
    return f"#{message.seq} {message.topic} (QoS {message.qos}{flags}): {text}"


class MQTTInbox(InboxView):
    """Live messages of an MQTT subscription (the last ``limit`` shown, all counted).

    Args:
        filters: a topic filter or several (``+`` one level, ``#`` the rest).
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``mqtt://`` URL, or ``None``.
        qos: subscription QoS.
        limit: how many of the latest messages are shown (and kept in memory).
        key: registry key (default: the filters): re-creating an inbox for the same filters,
            e.g. by re-running the cell, stops the old one.
        start: subscribe at once.
        **options: ``client_id``, ``clean_session``, ``on_message`` of
            :class:`MQTTInboxModel`.

    Example:
        >>> MQTTInbox(["sensors/+/temperature", "alerts/#"], endpoints)   # doctest: +SKIP
    """

    model: MQTTInboxModel

    def __init__(self, filters: str | Sequence[str | tuple[str, int]],
                 endpoints_or_url: Endpoints | str | None = None, *, qos: int = 1,
                 limit: int = 20, key: str | None = None, start: bool = True,
                 **options: Any) -> None:
        model = MQTTInboxModel(filters, endpoints_or_url, qos=qos, limit=limit, key=key,
                               **options)
        names = ", ".join(f for f, _ in model.filters)
        super().__init__(model, f"<b>MQTT inbox</b> {html.escape(names)}",
                         format_line=format_mqtt_message, start=start)
