"""MQTT widgets: a publisher, a live subscription inbox, and a topic-filter explainer.

Each widget is a thin view over a plain model that scripts and tests drive without a browser:

* :class:`MQTTPublisher` over :class:`MQTTPublisherModel`: topic, payload, QoS and retain;
  one message per click, and the result (for QoS 1 and 2: acknowledged by the broker) shown
  below the button.
* :class:`MQTTInbox` over :class:`MQTTInboxModel`: a subscription with wildcard filters on a
  paho client of its own whose network loop runs in paho's background thread
  (``loop_start``). It keeps the last ``limit`` messages and counts all of them; it stops
  when closed or when another inbox is created under the same key (a re-run cell), through
  the worker registry of :mod:`mqkit.clients`. The view is updated from paho's thread by
  setting widget values, never with ``with output:``.
* :class:`TopicFilterExplainer` over :class:`TopicFilterModel`: which filters match a topic,
  and why, from the pure model in :mod:`mqkit.routing` (no broker involved).

Example:
    >>> inbox = MQTTInbox(["sensors/+/temperature", "alerts/#"], endpoints)  # doctest: +SKIP
    >>> MQTTPublisher(endpoints, topic="sensors/kitchen/temperature")         # doctest: +SKIP
    >>> inbox.model.wait_for(1, timeout=5)                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import html
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from mqkit import clients
from mqkit.exceptions import BrokerConnectionError, ConfigError, ConnectionLost
from mqkit.routing import TopicMatch, topic_matches, validate_topic_filter, validate_topic_name
from mqkit.widgets.inbox import InboxView

if TYPE_CHECKING:
    from mqkit.brokers.base import Endpoints

log = logging.getLogger(__name__)

#: Seconds between two view updates while messages stream in.
NOTIFY_INTERVAL = 0.1
_NEVER = float("inf")
_QOS_MEANING = {0: "at most once", 1: "at least once", 2: "exactly once"}


def _check_qos(qos: int) -> int:
    if qos not in (0, 1, 2):
        raise ConfigError(f"QoS must be 0, 1 or 2, not {qos!r}.",
                          hint="0 = at most once, 1 = at least once, 2 = exactly once.")
    return qos


# -- publisher -------------------------------------------------------------------------


@dataclass(frozen=True)
class MQTTPublishResult:
    """What happened to one published MQTT message.

    Attributes:
        ok: False when the message could not be sent or was not acknowledged in time.
        topic: the topic it was published to.
        qos: its QoS (0, 1 or 2).
        retain: whether the broker was asked to keep it as the topic's retained message.
        mid: paho's message id.
        is_acknowledged: True when the broker acknowledged it (PUBACK for QoS 1, PUBCOMP
            for QoS 2); QoS 0 is never acknowledged.
        detail: why it failed, or an empty string.
    """

    ok: bool
    topic: str
    qos: int
    retain: bool = False
    mid: int = 0
    is_acknowledged: bool = False
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.topic!r} (QoS {self.qos}{', retained' if self.retain else ''})"
        if not self.ok:
            return f"NOT PUBLISHED to {where}: {self.detail}"
        how = {0: "sent, QoS 0 has no acknowledgement", 1: "acknowledged by the broker: PUBACK",
               2: "acknowledged by the broker: PUBREC, PUBREL, PUBCOMP"}[self.qos]
        return f"published to {where} ({how})"


class MQTTPublisherModel:
    """Publishes MQTT messages over a paho client whose loop runs in the background.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``mqtt://`` URL, or ``None``.
        client_id: the client id (a random ``mqkit-pub-…`` one by default).
        key: registry key; a new publisher with the same key (a re-run cell) disconnects
            this one. ``None`` registers nothing.
        timeout: seconds to wait for the CONNACK, and for the acknowledgement of QoS 1/2.

    Attributes:
        published: how many messages were published successfully.
        client: the connected paho client.
    """

    def __init__(self, endpoints_or_url: Endpoints | str | None = None, *,
                 client_id: str | None = None, key: str | None = None,
                 timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.key = key
        self.published = 0
        self._is_replaced = False
        self.client_id = client_id or f"mqkit-pub-{secrets.token_hex(4)}"
        self.client = clients.mqtt_client(endpoints_or_url, client_id=self.client_id)
        # The loop thread is registered under a key of this instance only, so a re-run
        # cell stops exactly the old publisher's loop (through register(key) below).
        loop_key = f"mqtt-loop:{self.client_id}:{secrets.token_hex(3)}"
        clients.mqtt_connect(client=self.client, timeout=timeout, key=loop_key)
        self._loop = clients.workers().get(loop_key)
        if key is not None:
            clients.register(key, self)

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                retain: bool = False) -> MQTTPublishResult:
        """Publish one message; for QoS 1 and 2, wait for the broker's acknowledgement.

        Raises:
            ConfigError: an invalid topic (empty, with a wildcard) or QoS.
            ConnectionLost: this publisher was closed or replaced by a newer one.
        """
        if self._is_replaced:
            raise ConnectionLost(
                f"This MQTT publisher was closed or replaced (key {self.key!r}).",
                hint="Use the newer publisher, or create a new one.")
        validate_topic_name(topic)
        _check_qos(qos)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != 0:
            import paho.mqtt.client as mqtt

            return MQTTPublishResult(False, topic, qos, retain, info.mid,
                                     detail=f"paho said {mqtt.error_string(info.rc)}")
        if qos == 0:
            self.published += 1
            return MQTTPublishResult(True, topic, qos, retain, info.mid)
        try:
            info.wait_for_publish(self.timeout)
        except RuntimeError as exc:  # paho: the message was dropped (connection lost)
            return MQTTPublishResult(False, topic, qos, retain, info.mid, detail=str(exc))
        if not info.is_published():
            return MQTTPublishResult(False, topic, qos, retain, info.mid, detail=(
                f"no acknowledgement within {self.timeout} s (paho re-sends it after a "
                "reconnect)"))
        self.published += 1
        return MQTTPublishResult(True, topic, qos, retain, info.mid, is_acknowledged=True)

    def close(self) -> None:
        """Disconnect and stop the client's loop thread (idempotent)."""
        self._is_replaced = True
        if self._loop is not None:
            self._loop.stop()
        else:
            self.client.disconnect()
            self.client.loop_stop()
        if self.key is not None:
            clients.unregister(self.key, self)

    stop = close


class MQTTPublisher(widgets.VBox):
    """A form that publishes one MQTT message per click: topic, payload, QoS and retain.

    Errors (an invalid topic, a lost connection) are shown below the button, not raised.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``mqtt://`` URL, or ``None``.
        topic: initial topic.
        payload: initial payload.
        qos: initial QoS.
        retain: initial state of the retain box.
        key: registry key: re-running the cell disconnects the previous publisher.

    Example:
        >>> MQTTPublisher(endpoints, topic="sensors/kitchen/temperature", payload="21.5")
        ... # doctest: +SKIP
    """

    def __init__(self, endpoints_or_url: Endpoints | str | None = None, *, topic: str = "",
                 payload: str = "", qos: int = 0, retain: bool = False,
                 key: str | None = "mqtt-publisher") -> None:
        self.model = MQTTPublisherModel(endpoints_or_url, key=key)
        self.topic = widgets.Text(topic, description="topic", placeholder="e.g. home/kitchen")
        self.payload = widgets.Textarea(payload, description="payload", rows=2)
        self.qos = widgets.Dropdown(options=[(f"{q} — {m}", q) for q, m in _QOS_MEANING.items()],
                                    value=_check_qos(qos), description="QoS")
        self.retain = widgets.Checkbox(retain, description="retain", indent=False)
        self.button = widgets.Button(description="Publish", button_style="primary",
                                     icon="paper-plane")
        self.output = widgets.Output()
        self.button.on_click(lambda _button: self.publish())
        super().__init__([self.topic, self.payload, widgets.HBox([self.qos, self.retain]),
                          self.button, self.output])

    def publish(self) -> MQTTPublishResult | None:
        """Publish what the form holds; show the result or the error below the button."""
        try:
            result = self.model.publish(self.topic.value, self.payload.value,
                                        qos=self.qos.value, retain=self.retain.value)
        except Exception as exc:
            self._show(f"ERROR {type(exc).__name__}: {exc}")
            return None
        self._show(str(result))
        return result

    def _show(self, line: str) -> None:
        self.output.outputs = self.output.outputs[-9:]  # the last ten results
        self.output.append_stdout(line + "\n")

    def close(self) -> None:
        """Disconnect the publisher's client and close the widget."""
        self.model.close()
        super().close()


# -- inbox -----------------------------------------------------------------------------


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
        result.append((topic_filter, _check_qos(item_qos)))
    if not result:
        raise ConfigError("An MQTT inbox needs at least one topic filter.",
                          hint="Pass a filter, e.g. MQTTInbox('sensors/#').")
    return result


class MQTTInboxModel:
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
        received: the last ``limit`` messages (a deque).
        count: how many messages were received in total.
        error: the last error (a refused subscription, a lost connection), or ``None``.
        granted: the QoS the broker granted for each filter (after the SUBACK).
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
        self.received: deque[MQTTMessage] = deque(maxlen=limit)
        self.count = 0
        self.error: BaseException | None = None
        self.granted: dict[str, int] = {}
        #: Called (from paho's thread, no arguments) when new messages were recorded.
        self.listeners: list[Callable[[], None]] = []
        self.client: Any = None
        self._loop: clients.Stoppable | None = None
        self._condition = threading.Condition()
        self._subscribed = threading.Event()
        self._is_running = False
        self._targets: list[int] = []
        self._wake_at = _NEVER
        self._notified_at = 0.0
        self._timer: threading.Timer | None = None

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
            clients.mqtt_connect(client=client, timeout=timeout, key=loop_key)
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
        self._notify(force=True)

    def stop(self) -> None:
        """Disconnect and stop paho's loop thread; the kept messages stay (idempotent)."""
        self._is_running = False
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()
        elif self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        clients.unregister(self.key, self)
        self._notify(force=True)

    def clear(self) -> None:
        """Forget the kept messages and reset the count."""
        with self._condition:
            self.received.clear()
            self.count = 0
        self._notify(force=True)

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until ``count >= n``; return whether it got there within ``timeout``."""
        with self._condition:
            self._targets.append(n)
            self._wake_at = min(self._targets)
            try:
                return self._condition.wait_for(lambda: self.count >= n, timeout)
            finally:
                self._targets.remove(n)
                self._wake_at = min(self._targets, default=_NEVER)

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

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        if self._is_running:
            self.error = BrokerConnectionError(f"lost the connection ({reason_code}); paho "
                                               "reconnects by itself")
            self._notify(force=True)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._condition:
            self.count += 1
            record = MQTTMessage(seq=self.count, topic=message.topic, payload=message.payload,
                                 qos=message.qos, retain=bool(message.retain),
                                 dup=bool(message.dup),
                                 filters=self.matching_filters(message.topic))
            self.received.append(record)
            if self.error is not None and isinstance(self.error, BrokerConnectionError):
                self.error = None  # reconnected
            if self.count >= self._wake_at:
                self._condition.notify_all()
        if self.on_message is not None:
            try:
                self.on_message(record)
            except Exception:
                log.exception("MQTT inbox %s: on_message failed", self.key)
        self._notify()

    def _notify(self, force: bool = False) -> None:
        """Tell listeners, at most every NOTIFY_INTERVAL; a trailing update is scheduled."""
        now = time.monotonic()
        wait = self._notified_at + NOTIFY_INTERVAL - now
        if not force and wait > 0:
            if self._timer is None and self._is_running:
                # One short-lived timer at a time, so the last messages of a burst show too.
                self._timer = threading.Timer(wait, self._trailing)
                self._timer.name = f"mqkit-render-{self.client_id}"
                self._timer.daemon = True
                self._timer.start()
            return
        self._notified_at = now
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                log.exception("MQTT inbox %s: a listener failed", self.key)

    def _trailing(self) -> None:
        self._timer = None
        self._notify(force=True)


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

    def __init__(self, filters: str | Sequence[str | tuple[str, int]],
                 endpoints_or_url: Endpoints | str | None = None, *, qos: int = 1,
                 limit: int = 20, key: str | None = None, start: bool = True,
                 **options: Any) -> None:
        self.model = MQTTInboxModel(filters, endpoints_or_url, qos=qos, limit=limit, key=key,
                                    **options)
        names = ", ".join(f for f, _ in self.model.filters)
        self._build(f"<b>MQTT inbox</b> {html.escape(names)}", start)

    def _format(self, message: Any) -> str:
        return format_mqtt_message(message)


# -- topic-filter explainer ------------------------------------------------------------


@dataclass(frozen=True)
class FilterVerdict:
    """One filter's verdict for a topic.

    Attributes:
        topic_filter: the filter.
        matched: whether a subscriber with it receives the message (False when invalid).
        reason: why, in a sentence (or why the filter or topic is invalid).
        is_valid: False when the broker would refuse the filter (or the topic).
    """

    topic_filter: str
    matched: bool
    reason: str
    is_valid: bool = True


class TopicFilterModel:
    """Which of several MQTT topic filters match a topic, and why (pure, no broker).

    Args:
        filters: topic filters (blank entries are ignored).
        topic: the topic a message is published to.

    Example:
        >>> model = TopicFilterModel(["sport/+", "sport/#"], "sport/tennis/player1")
        >>> [v.matched for v in model.explain()]
        [False, True]
    """

    def __init__(self, filters: Sequence[str] = (), topic: str = "") -> None:
        self.filters = [f for f in filters if f.strip()]
        self.topic = topic

    def explain(self) -> list[FilterVerdict]:
        """A verdict per filter, in the order given."""
        verdicts = []
        for topic_filter in self.filters:
            try:
                match: TopicMatch = topic_matches(topic_filter, self.topic)
            except ConfigError as exc:
                verdicts.append(FilterVerdict(topic_filter, False, exc.message, False))
                continue
            verdicts.append(FilterVerdict(topic_filter, match.matched, match.reason))
        return verdicts

    def matching(self) -> list[str]:
        """The filters that match the topic."""
        return [v.topic_filter for v in self.explain() if v.matched]

    def lines(self) -> list[str]:
        """One line per filter: ``✔``/``✘``/``⚠ invalid``, the filter, and the reason."""
        marks = {True: "✔ match   ", False: "✘ no match"}
        return [f"{marks[v.matched] if v.is_valid else '⚠ invalid '} {v.topic_filter!r}: "
                f"{v.reason}" for v in self.explain()]


class TopicFilterExplainer(widgets.VBox):
    """Type filters (one per line) and a topic; see which filters match and why.

    Args:
        filters: initial filters.
        topic: initial topic.

    Example:
        >>> TopicFilterExplainer(["sport/+", "sport/#", "+/tennis/#"], "sport/tennis/player1")
        ... # doctest: +SKIP
    """

    def __init__(self, filters: Sequence[str] = (), topic: str = "") -> None:
        self.model = TopicFilterModel(filters, topic)
        self.filters = widgets.Textarea("\n".join(self.model.filters), description="filters",
                                        placeholder="one filter per line, e.g. sport/#",
                                        rows=max(3, len(self.model.filters)))
        self.topic = widgets.Text(topic, description="topic", placeholder="e.g. sport/tennis")
        self.result = widgets.HTML()
        self.filters.observe(lambda _change: self.render(), names="value")
        self.topic.observe(lambda _change: self.render(), names="value")
        super().__init__([self.filters, self.topic, self.result])
        self.render()

    def render(self) -> None:
        """Re-read the form into the model and show the verdicts."""
        self.model.filters = [f for f in self.filters.value.splitlines() if f.strip()]
        self.model.topic = self.topic.value
        body = "\n".join(html.escape(line) for line in self.model.lines())
        self.result.value = f"<pre style='margin:0'>{body or '(no filters)'}</pre>"
