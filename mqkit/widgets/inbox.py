"""QueueInbox: live messages from one or more queues, consumed in a background thread.

The consumer thread has its own pika connection, used only in that thread. It records each
message in a :class:`~mqkit.widgets.buffer.MessageBuffer` (the last ``limit`` are kept, all
are counted) and acknowledges it only after recording, so nothing is lost; an unacked
message goes back to the queue when the inbox stops. Acks go in batches (``multiple=True``),
one frame for up to ``ACK_EVERY`` messages, which lets the inbox keep up with a raw consume
loop that acks one by one. The shared :class:`~mqkit.widgets.inbox_view.InboxView` is
updated from the thread by setting widget values, at most ten times a second, never with
``with output:``.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mqkit import clients
from mqkit.exceptions import BrokerConnectionError, ConfigError
from mqkit.widgets.buffer import BufferedModel, MessageBuffer
from mqkit.widgets.inbox_view import InboxView

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)

#: Seconds the consumer waits for the broker before checking whether to stop.
POLL_INTERVAL = 0.1
#: Seconds between reconnection attempts after the connection was lost.
RECONNECT_DELAY = 1.0
#: Acknowledge (``multiple=True``) at least every this many recorded messages.
ACK_EVERY = 50


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


class InboxModel(BufferedModel[Message]):
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
        received: a copy of the last ``limit`` messages, oldest first.
        count: how many messages were received in total.
        error: the last error of the consumer thread, or ``None``.
        buffer: the :class:`~mqkit.widgets.buffer.MessageBuffer` the messages go to.
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
        self.buffer: MessageBuffer[Message] = MessageBuffer(limit, name=self.key)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        # pause(): asked for, and reached (the consumers are gone from the broker).
        self._pause_asked = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tag = 0
        self._acked_tag = 0

    @property
    def is_running(self) -> bool:
        """True while the consumer thread runs and no stop was asked for."""
        return self._is_alive() and not self._stop.is_set()

    def _is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Start consuming in a background thread; return once the consumers are set up.

        Raises:
            ConfigError: a queue does not exist.
            BrokerConnectionError: no connection to the broker.
        """
        if self._is_alive():  # running, or still finishing a stop that timed out
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
        self.buffer.notify(force=True)

    def pause(self, timeout: float = 5.0) -> bool:
        """Stop taking messages for a while; return True once no consumer of ours is left.

        Messages recorded so far are acked; prefetched ones go back to their queue. The
        connection stays open. Code that must see the queues untouched (a probe that
        publishes and then looks into them) pauses the inboxes that consume them, through
        :func:`mqkit.clients.workers.consumers_paused`.
        """
        if not self._is_alive():
            return False
        self._pause_asked.set()
        return self._paused.wait(timeout)

    def resume(self) -> None:
        """Consume again after :meth:`pause`."""
        self._pause_asked.clear()

    # -- the consumer thread ---------------------------------------------------------

    def _consume(self, connection: Any) -> Any:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        for queue in self.queues:
            channel.basic_consume(queue, self._on_message_for(queue))
        self._last_tag = self._acked_tag = 0  # delivery tags count per channel
        return channel

    def _pause_here(self, connection: Any, channel: Any) -> Any:
        """Close the consuming channel, wait (with heartbeats) until resumed, consume again."""
        self._ack(channel)
        channel.close()  # prefetched, unrecorded messages go back to their queue
        self._paused.set()
        try:
            while self._pause_asked.is_set() and not self._stop.is_set():
                connection.process_data_events(time_limit=POLL_INTERVAL)
        finally:
            self._paused.clear()
        return self._consume(connection)

    def _run(self) -> None:
        import pika.exceptions as pe

        while not self._stop.is_set():
            connection = None
            try:
                connection = clients.amqp_connection(self.url, name=f"mqkit-{self.key}")
                channel = self._consume(connection)
                self.error = None  # a reconnection succeeded
                self._ready.set()
                while not self._stop.is_set():
                    if self._pause_asked.is_set():
                        channel = self._pause_here(connection, channel)
                        continue
                    connection.process_data_events(time_limit=POLL_INTERVAL)
                    self._ack(channel)
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
            message = self.buffer.append(lambda seq: Message(
                seq=seq, queue=queue, exchange=method.exchange,
                routing_key=method.routing_key, body=body,
                headers=dict(properties.headers or {}),
                content_type=properties.content_type,
                delivery_mode=properties.delivery_mode,
                redelivered=method.redelivered))
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
            self.buffer.notify()

        return on_message

    def _ack(self, channel: Any) -> None:
        if self._last_tag > self._acked_tag:
            channel.basic_ack(self._last_tag, multiple=True)
            self._acked_tag = self._last_tag

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

    model: InboxModel

    def __init__(self, queues: str | Sequence[str],
                 endpoints_or_url: Endpoints | str | None = None, *, limit: int = 20,
                 key: str | None = None, start: bool = True,
                 on_message: Callable[[Message], None] | None = None) -> None:
        model = InboxModel(queues, endpoints_or_url, limit=limit, key=key, on_message=on_message)
        super().__init__(model, f"<b>Inbox</b> {html.escape(', '.join(model.queues))}",
                         format_line=format_message, start=start)
