"""QueueInbox: live messages from one or more queues, consumed in a background thread.

The consumer thread has its own pika connection, used only in that thread. It records each
message (the last ``limit`` are kept, all are counted) and acknowledges it only after
recording, so nothing is lost; an unacked message goes back to the queue when the inbox
stops. Acks go in batches (``multiple=True``), one frame for up to ``ACK_EVERY``
messages, which lets the inbox keep up with a raw consume loop that acks one by one. The
view is updated from the thread by setting widget values, at most ten times a second, never
with ``with output:``.

Example:
    >>> inbox = QueueInbox("my_queue", endpoints, limit=20)   # doctest: +SKIP
    >>> inbox                                                  # doctest: +SKIP
    >>> inbox.model.wait_for(10, timeout=5)                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import html
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from mqkit import clients
from mqkit.exceptions import BrokerConnectionError, ConfigError

if TYPE_CHECKING:
    from mqkit.brokers.base import Endpoints

log = logging.getLogger(__name__)

#: Seconds between view updates while messages stream in.
NOTIFY_INTERVAL = 0.1
#: Seconds the consumer waits for the broker before checking whether to stop.
POLL_INTERVAL = 0.1
#: Seconds between reconnection attempts after the connection was lost.
RECONNECT_DELAY = 1.0
#: Acknowledge (``multiple=True``) at least every this many recorded messages.
ACK_EVERY = 50
_NEVER = float("inf")


@dataclass(frozen=True)
class Message:
    """One received message.

    Attributes:
        seq: its number in the order received (1 = first).
        queue: the queue it came from.
        exchange: the exchange it was published to ('' = default exchange).
        routing_key: its routing key.
        body: the raw body.
        headers: its headers (empty dict when none).
        content_type: its content type, or ``None``.
        delivery_mode: 2 for persistent, 1 or ``None`` for transient.
        redelivered: True when the broker delivered it before (not acked then).
        received_at: when the inbox recorded it.
    """

    seq: int
    queue: str
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = None
    delivery_mode: int | None = None
    redelivered: bool = False
    received_at: datetime.datetime = field(default_factory=datetime.datetime.now)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")


class InboxModel:
    """A background consumer of one or more queues, with bounded memory.

    Args:
        queues: a queue name or several.
        endpoints_or_url: :class:`~mqkit.Endpoints`, an AMQP URL, or ``None``.
        limit: how many of the latest messages :attr:`received` keeps.
        key: registry key; starting another inbox under the same key (a re-run cell) stops
            this one. Default: ``inbox:`` and the queue names.
        prefetch: how many unacked messages the broker may send ahead.
        on_message: called with each :class:`Message` in the consumer thread, after it is
            recorded and before it is acked (keep it short: it holds up the consumer).

    Attributes:
        received: the last ``limit`` messages (a deque).
        count: how many messages were received in total.
        error: the last error of the consumer thread, or ``None``.
    """

    def __init__(self, queues: str | Sequence[str],
                 endpoints_or_url: Endpoints | str | None = None, *, limit: int = 20,
                 key: str | None = None, prefetch: int = 200,
                 on_message: Callable[[Message], None] | None = None) -> None:
        self.queues = [queues] if isinstance(queues, str) else list(queues)
        if not self.queues:
            raise ConfigError("An inbox needs at least one queue.",
                              hint="Pass a queue name, e.g. QueueInbox('my_queue').")
        self.url = clients.resolve_amqp_url(endpoints_or_url)
        self.limit = limit
        self.key = key or "inbox:" + ",".join(self.queues)
        self.prefetch = prefetch
        self.on_message = on_message
        self.received: deque[Message] = deque(maxlen=limit)
        self.count = 0
        self.error: BaseException | None = None
        #: Called (from the consumer thread, no arguments) when new messages were recorded.
        self.listeners: list[Callable[[], None]] = []
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._notified = 0
        self._notified_at = 0.0
        # Waiters are woken only when the count reaches what one of them waits for, not
        # on every message (that would make the waiting thread fight the consumer).
        self._targets: list[int] = []
        self._wake_at = _NEVER
        self._last_tag = 0
        self._acked_tag = 0

    @property
    def is_running(self) -> bool:
        """True while the consumer thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Start consuming in a background thread; return once the consumers are set up.

        Raises:
            ConfigError: a queue does not exist.
            BrokerConnectionError: no connection to the broker.
        """
        if self.is_running:
            return
        clients.register(self.key, self)
        self.error = None
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name=f"mqkit-{self.key}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) and self.error is None:
            self.stop()
            raise BrokerConnectionError(f"The inbox for {', '.join(self.queues)} did not "
                                        f"start within {timeout} s.",
                                        hint="Is the broker running? Try `mqkit status`.")
        if self.error is not None:
            self.stop()
            raise self.error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the consumer; unacked messages return to their queue (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("inbox %s: consumer thread still running after %s s",
                            self.key, timeout)
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

    # -- the consumer thread ---------------------------------------------------------

    def _run(self) -> None:
        import pika.exceptions as pe

        while not self._stop.is_set():
            connection = None
            try:
                connection = clients.amqp_connection(self.url, name=f"mqkit-{self.key}")
                channel = connection.channel()
                channel.basic_qos(prefetch_count=self.prefetch)
                for queue in self.queues:
                    channel.basic_consume(queue, self._on_message_for(queue))
                self._last_tag = self._acked_tag = 0  # delivery tags count per channel
                self.error = None  # a reconnection succeeded
                self._ready.set()
                while not self._stop.is_set():
                    before = self.count
                    connection.process_data_events(time_limit=POLL_INTERVAL)
                    self._ack(channel)
                    self._notify(force=self.count == before)
                # A clean close: pending acks are flushed before the Close frame, and
                # prefetched but unrecorded messages go back to their queue.
                connection.close()
                return
            except pe.ChannelClosedByBroker as exc:
                self.error = ConfigError(
                    f"The inbox cannot consume from {', '.join(self.queues)}: "
                    f"{exc.reply_code} {exc.reply_text}.",
                    hint="Declare the queue first (channel.queue_declare) and check its name.")
                self._ready.set()
                self._close_quietly(connection)
                return
            except (BrokerConnectionError, pe.AMQPConnectionError, OSError) as exc:
                self.error = exc
                self._close_quietly(connection)
                if not self._ready.is_set():
                    self._ready.set()
                    return
                log.info("inbox %s lost its connection (%r); reconnecting", self.key, exc)
                self._stop.wait(RECONNECT_DELAY)
            except BaseException as exc:  # never die silently in a notebook
                self.error = exc
                self._ready.set()
                self._close_quietly(connection)
                log.exception("inbox %s stopped", self.key)
                return

    def _on_message_for(self, queue: str) -> Callable[..., None]:
        def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            with self._condition:
                self.count += 1
                message = Message(
                    seq=self.count, queue=queue, exchange=method.exchange,
                    routing_key=method.routing_key, body=body,
                    headers=dict(properties.headers or {}),
                    content_type=properties.content_type,
                    delivery_mode=properties.delivery_mode,
                    redelivered=method.redelivered)
                self.received.append(message)
                if self.count >= self._wake_at:
                    self._condition.notify_all()
            if self.on_message is not None:
                try:
                    self.on_message(message)
                except Exception:
                    log.exception("inbox %s: on_message failed", self.key)
            # Acked only after recording, so never lost; acked in batches (one frame for
            # many messages), the rest after each round of process_data_events.
            self._last_tag = method.delivery_tag
            if self._last_tag - self._acked_tag >= ACK_EVERY:
                self._ack(channel)

        return on_message

    def _ack(self, channel: Any) -> None:
        if self._last_tag > self._acked_tag:
            channel.basic_ack(self._last_tag, multiple=True)
            self._acked_tag = self._last_tag

    def _notify(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.count == self._notified and not force:
            return
        if not force and now - self._notified_at < NOTIFY_INTERVAL:
            return
        self._notified, self._notified_at = self.count, now
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                log.exception("inbox %s: a listener failed", self.key)

    @staticmethod
    def _close_quietly(connection: Any) -> None:
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception as exc:
                log.debug("closing an inbox connection: %r", exc)


def format_message(message: Message, width: int = 120) -> str:
    """One line for a message: number, queue, routing key and the start of the body."""
    text = message.text.replace("\n", " ")
    if len(text) > width:
        text = text[: width - 1] + "…"
    extra = f" {message.headers}" if message.headers else ""
    again = " (redelivered)" if message.redelivered else ""
    return f"#{message.seq} [{message.queue}] {message.routing_key!r}{extra}{again}: {text}"


class InboxView(widgets.VBox):
    """The view both inboxes share: title, counter, start/stop toggle, the last messages.

    A subclass builds its ``model`` (``start``, ``stop``, ``is_running``, ``received``,
    ``count``, ``error``, ``listeners``), calls :meth:`_build`, and says how one message
    reads (:meth:`_format`).
    """

    model: Any

    def _build(self, title: str, start: bool) -> None:
        self.title = widgets.HTML(title)
        self.counter = widgets.Label("0 received")
        self.toggle = widgets.Button(description="Stop", icon="stop")
        self.toggle.on_click(lambda _button: self._toggle())
        self.messages = widgets.HTML("<pre style='margin:0'>(no messages yet)</pre>")
        widgets.VBox.__init__(self, [widgets.HBox([self.title, self.counter, self.toggle]),
                                     self.messages])
        self.model.listeners.append(self.render)
        if start:
            self.start()

    def _format(self, message: Any) -> str:
        raise NotImplementedError

    def _is_running(self) -> bool:
        return bool(self.model.is_running)

    def start(self) -> None:
        """Start receiving (see the model's ``start``)."""
        self.model.start()
        self.render()

    def stop(self) -> None:
        """Stop receiving; the messages shown stay."""
        self.model.stop()
        self.render()

    def close(self) -> None:
        """Stop the background thread and close the widget."""
        self.model.stop()
        super().close()

    def _toggle(self) -> None:
        try:
            if self.model.is_running:
                self.stop()
            else:
                self.start()
        except Exception as exc:
            self.counter.value = f"{type(exc).__name__}: {exc}"

    def render(self) -> None:
        """Update the view from the model (safe to call from the background thread)."""
        model = self.model
        with model._condition:
            lines = [self._format(m) for m in model.received]
            count = model.count
        state = "running" if self._is_running() else "stopped"
        error = f" — {type(model.error).__name__}: {model.error}" if model.error else ""
        self.counter.value = (f"{count} received, showing the last {len(lines)} "
                              f"({state}){error}")
        self.toggle.description = "Stop" if state == "running" else "Start"
        self.toggle.icon = "stop" if state == "running" else "play"
        body = "\n".join(html.escape(line) for line in lines) or "(no messages yet)"
        self.messages.value = f"<pre style='margin:0'>{body}</pre>"


class QueueInbox(InboxView):
    """Live messages from one or more queues (the last ``limit`` shown, all counted).

    Args:
        queues: a queue name or several.
        endpoints_or_url: :class:`~mqkit.Endpoints`, an AMQP URL, or ``None``.
        limit: how many of the latest messages are shown (and kept in memory).
        key: registry key (default: the queue names): re-creating an inbox for the same
            queues, e.g. by re-running the cell, stops the old one.
        start: start consuming at once.
        on_message: see :class:`InboxModel`.

    Example:
        >>> inbox = QueueInbox(["orders", "alerts"], limit=20)   # doctest: +SKIP
        >>> inbox                                                 # doctest: +SKIP
    """

    def __init__(self, queues: str | Sequence[str],
                 endpoints_or_url: Endpoints | str | None = None, *, limit: int = 20,
                 key: str | None = None, start: bool = True,
                 on_message: Callable[[Message], None] | None = None) -> None:
        self.model = InboxModel(queues, endpoints_or_url, limit=limit, key=key,
                                on_message=on_message)
        self._build(f"<b>Inbox</b> {html.escape(', '.join(self.model.queues))}", start)

    def _format(self, message: Any) -> str:
        return format_message(message)

    def _is_running(self) -> bool:
        return bool(self.model.is_running and not self.model._stop.is_set())
