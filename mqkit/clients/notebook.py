"""Connections that survive a notebook: keep-alive while idle, reconnect on the next use.

:class:`NotebookConnection` is what a lab should hold across cells. pika's
``BlockingConnection`` only talks to the broker while one of its methods runs, so a notebook
that sits idle longer than two heartbeat intervals loses its connection (``StreamLostError``
on the next cell). ``NotebookConnection`` does two things about it:

1. **keep-alive**: a daemon thread pumps the socket (heartbeats in and out) every fraction
   of a heartbeat. It only does I/O: frames that arrive (deliveries for a
   ``basic_consume``) are buffered and dispatched on the user's thread, exactly as pika
   would; user callbacks never run on the keep-alive thread. pika is not thread-safe, so
   the thread and every call the user makes through the wrapper hold one lock, and the
   thread skips a beat instead of waiting when the user is busy.
2. **reconnect on the next use**: when the connection died anyway (the broker was
   restarted in lab 02, the laptop slept), the next call opens a new connection and
   re-opens the channels (replaying ``basic_qos`` and ``confirm_delivery``). A call that
   fails mid-flight raises :class:`~mqkit.exceptions.ConnectionLost`, never a raw
   ``StreamLostError``; the call after it reconnects. What a dead connection took with it
   (exclusive queues, consumers, unacked deliveries) is gone, as RabbitMQ defines it.

Example:
    >>> connection = notebook_connection(endpoints, name="lab01")   # doctest: +SKIP
    >>> channel = connection.channel()                                # doctest: +SKIP
    >>> channel.queue_declare(queue="my_queue", durable=True)        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mqkit.clients.amqp import (
    amqp_parameters,
    connection_errors,
    open_blocking,
    resolve_amqp_url,
    where,
)
from mqkit.clients.workers import register, unregister
from mqkit.errors_amqp import translate_amqp_error
from mqkit.exceptions import ConnectionLost
from mqkit.urls import parse_amqp_urls

if TYPE_CHECKING:
    import pika

    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)


def _pump_io(connection: pika.BlockingConnection) -> None:
    """Do the socket's pending I/O (heartbeats included) without dispatching callbacks.

    ``process_data_events`` would run consumer callbacks on the calling thread; here only
    frames are read into pika's buffers, to be dispatched later on the user's thread. This
    uses two private helpers of pika's BlockingConnection (pika is pinned below 1.5).
    """
    try:
        from pika.adapters.blocking_connection import _IoloopTimerContext

        flush = connection._flush_output
        impl = connection._impl
    except (ImportError, AttributeError):  # pragma: no cover - another pika layout
        connection.process_data_events(time_limit=0)
        return
    with _IoloopTimerContext(0, impl) as timer:
        flush(timer.is_ready)


def _keep_alive(owner_ref: weakref.ref[NotebookConnection], stop: threading.Event,
                interval: float) -> None:
    while not stop.wait(interval):
        owner = owner_ref()
        if owner is None:
            return
        lock = owner._lock
        if not lock.acquire(blocking=False):
            continue  # the user is calling pika right now, which does the I/O itself
        try:
            connection = owner._connection
            if connection is not None and connection.is_open:
                _pump_io(connection)
        except Exception as exc:
            log.info("keep-alive of %s: connection lost (%r); the next use reconnects",
                     owner.name, exc)
        finally:
            lock.release()
            del owner


class _Link:
    """A connection's lock and generation (how often it was opened), in plain slots.

    The wrappers below define ``__getattr__``, and CPython does not specialize attribute
    loads on such classes: each ``self._x`` there is a full lookup. The publish hot path
    reads this record instead.
    """

    __slots__ = ("generation", "lock")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.generation = 0


class NotebookConnection:
    """A pika ``BlockingConnection`` that survives idle notebook cells and broker restarts.

    Use it like a ``BlockingConnection``: :meth:`channel`, :meth:`close`, ``with``. See the
    module docstring for how it stays alive (keep-alive thread, then reconnect on next use).

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints` or an ``amqp://`` URL.
        heartbeat: heartbeat interval in seconds (``None``: the broker's proposal, 60 s).
        name: connection name in the management UI; also its registry key when ``key``
            is not given.
        keep_alive: run the keep-alive thread (``False`` leaves only reconnect-on-use).
        key: registry key; opening another connection with the same key (a re-run cell)
            closes this one. ``None`` registers nothing.

    Raises:
        AuthenticationError: wrong credentials (at once, not on first use).
        BrokerConnectionError: the broker cannot be reached.

    Example:
        >>> connection = NotebookConnection(endpoints, name="lab01")   # doctest: +SKIP
        >>> channel = connection.channel()                   # doctest: +SKIP
        >>> channel.basic_publish("", "my_queue", b"Hello")  # doctest: +SKIP
    """

    def __init__(
        self,
        endpoints_or_url: Endpoints | str,
        *,
        heartbeat: int | None = None,
        name: str | None = None,
        keep_alive: bool = True,
        key: str | None = None,
    ) -> None:
        self.name = name or f"mqkit-{secrets.token_hex(3)}"
        self._url = resolve_amqp_url(endpoints_or_url)
        self._parameters = amqp_parameters(self._url, heartbeat=heartbeat, name=self.name)
        self._link = _Link()
        self._lock = self._link.lock
        self._connection: pika.BlockingConnection | None = None
        self._is_closed_by_user = False
        self._stop = threading.Event()
        #: How many times the connection was re-opened after it died.
        self.reconnects = 0
        self._connect()
        self._thread: threading.Thread | None = None
        if keep_alive:
            beat = heartbeat or 60
            self._thread = threading.Thread(
                target=_keep_alive, args=(weakref.ref(self), self._stop,
                                          max(0.2, min(1.0, beat / 4))),
                name=f"mqkit-keepalive-{self.name}", daemon=True)
            self._thread.start()
        self.key = key
        if key is not None:
            register(key, self)

    def _connect(self) -> None:
        self._connection = open_blocking(self._parameters, self._url)
        self._link.generation += 1

    def _ensure(self) -> pika.BlockingConnection:
        """The live connection, re-opened when it died (call with the lock held)."""
        if self._is_closed_by_user:
            raise ConnectionLost(f"The connection {self.name!r} was closed with .close().",
                                 hint="Open a new one with mqkit.notebook_connection(endpoints).")
        if self._connection is None or not self._connection.is_open:
            log.info("connection %s was lost; reconnecting", self.name)
            self._connect()
            self.reconnects += 1
        assert self._connection is not None
        return self._connection

    def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call into pika, translating a lost connection into ConnectionLost."""
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            # A command the broker rejects (bad exchange type...) gets mqkit's error first.
            during = getattr(function, "__name__", "a call")
            translated = translate_amqp_error(exc, during=during, args=args, kwargs=kwargs)
            if translated is not None:
                raise translated from exc
            if isinstance(exc, connection_errors()):
                raise self._lost(exc, during) from None
            raise

    def _lost(self, exc: BaseException, during: str) -> ConnectionLost:
        return ConnectionLost(
            f"The connection {self.name!r} to RabbitMQ {where(parse_amqp_urls(self._url))} "
            f"was lost during {during}: {exc!r}.",
            hint="Run the cell again: the next use reconnects (exclusive queues and "
                 "consumers of the old connection are gone).")

    @property
    def is_open(self) -> bool:
        """True while the underlying connection is open (it may still reopen when False)."""
        connection = self._connection
        return bool(connection is not None and connection.is_open)

    @property
    def is_closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._is_closed_by_user

    @property
    def raw(self) -> pika.BlockingConnection:
        """The current pika connection (re-opened if needed); not protected by the lock."""
        with self._lock:
            return self._ensure()

    def channel(self, channel_number: int | None = None) -> NotebookChannel:
        """Open a channel that re-opens itself on the next use after a reconnect."""
        channel = NotebookChannel(self, channel_number)
        with self._lock:
            channel._ensure()
        return channel

    def close(self) -> None:
        """Close the connection and stop the keep-alive thread (idempotent)."""
        self._stop.set()
        with self._lock:
            self._is_closed_by_user = True
            connection, self._connection = self._connection, None
            if connection is not None and connection.is_open:
                try:
                    connection.close()
                except Exception as exc:  # already dead: nothing left to close
                    log.debug("closing %s: %r", self.name, exc)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if self.key is not None:
            unregister(self.key, self)

    stop = close

    def __enter__(self) -> NotebookConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else a BlockingConnection has, called under the lock.
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "add_callback_threadsafe":  # thread-safe by design; must not wait
            return self.raw.add_callback_threadsafe
        with self._lock:
            attribute = getattr(self._ensure(), name)
        if not callable(attribute):
            return attribute

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return self._call(getattr(self._ensure(), name), *args, **kwargs)

        return locked

    def __repr__(self) -> str:
        state = "closed" if self._is_closed_by_user else ("open" if self.is_open else "lost")
        return f"<NotebookConnection {self.name!r} {state}, reconnects={self.reconnects}>"


#: Channel calls whose effect a re-opened channel must get again.
_REPLAYED = ("basic_qos", "confirm_delivery")


class _Hot:
    """What :meth:`NotebookChannel.basic_publish` reads per message, in plain slots.

    ``publish`` is the current pika channel's ``basic_publish``; it is valid while
    ``generation`` equals the connection's (see :class:`_Link`).
    """

    __slots__ = ("generation", "link", "lock", "publish")

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.lock = link.lock
        self.generation = -1
        self.publish: Callable[..., None] | None = None


class NotebookChannel:
    """A channel of a :class:`NotebookConnection`; re-opens itself after a reconnect.

    It also re-opens after the broker closed it for an error (a passive declare of a missing
    queue, say), so the next cell can go on. Every pika ``BlockingChannel`` method works;
    generators (``channel.consume``) take the lock on each step.
    """

    def __init__(self, owner: NotebookConnection, channel_number: int | None = None) -> None:
        self._owner = owner
        self._number = channel_number
        self._raw: Any = None
        self._is_closed_by_user = False
        self._replay: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._hot = _Hot(owner._link)

    def _ensure(self) -> Any:
        """The live pika channel (call with the owner's lock held)."""
        owner = self._owner
        connection = owner._ensure()
        if self._is_closed_by_user:
            return self._raw  # pika itself reports use of a closed channel
        hot = self._hot
        if self._raw is None or hot.generation != hot.link.generation or not self._raw.is_open:
            if self._raw is not None:
                log.info("re-opening a channel of %s", owner.name)
            hot.generation = -1  # until the replay is done: a failed one is tried again
            self._raw = owner._call(connection.channel, self._number)
            for method, args, kwargs in self._replay:
                owner._call(getattr(self._raw, method), *args, **kwargs)
            hot.publish = self._raw.basic_publish
            hot.generation = hot.link.generation
        return self._raw

    @property
    def raw(self) -> Any:
        """The current pika ``BlockingChannel``; not protected by the lock."""
        with self._owner._lock:
            return self._ensure()

    @property
    def is_open(self) -> bool:
        """True while the underlying channel is open."""
        return bool(self._raw is not None and self._raw.is_open)

    @property
    def is_closed(self) -> bool:
        """True once :meth:`close` was called or the underlying channel closed."""
        return self._is_closed_by_user or not self.is_open

    @property
    def channel_number(self) -> int | None:
        """The AMQP channel number (of the current underlying channel)."""
        return self._raw.channel_number if self._raw is not None else self._number

    def basic_publish(self, exchange: str, routing_key: str, body: bytes | str,
                      properties: Any = None, mandatory: bool = False) -> None:
        """Publish as pika's ``basic_publish`` does, under the lock (the hot path)."""
        # Per message: one lookup through __getattr__'s slow path (self._hot), slots after
        # it, and acquire/release, which cost half of a ``with`` block.
        hot = self._hot
        lock = hot.lock
        lock.acquire()
        try:
            if hot.generation != hot.link.generation:
                self._ensure()
            try:
                hot.publish(exchange, routing_key, body, properties, mandatory)  # type: ignore[misc]
            except Exception as exc:
                # Imported here, not per call: this is the publish hot path.
                import pika.exceptions as pe

                if isinstance(exc, pe.ChannelWrongStateError | pe.ConnectionWrongStateError):
                    # Raised before anything was sent, so publishing again cannot duplicate.
                    if self._is_closed_by_user:
                        raise
                    self._owner._call(self._ensure().basic_publish, exchange, routing_key, body,
                                      properties, mandatory)
                elif isinstance(exc, connection_errors()):
                    raise self._owner._lost(exc, "basic_publish") from None
                else:
                    raise
        finally:
            lock.release()

    def close(self, reply_code: int = 0, reply_text: str = "Normal shutdown") -> None:
        """Close the channel; it does not re-open afterwards."""
        with self._owner._lock:
            self._is_closed_by_user = True
            if self._raw is not None and self._raw.is_open:
                self._owner._call(self._raw.close, reply_code, reply_text)

    def __enter__(self) -> NotebookChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._is_closed_by_user:
            with contextlib.suppress(ConnectionLost):
                self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        owner = self._owner
        with owner._lock:
            attribute = getattr(self._ensure(), name)
        if not callable(attribute):
            return attribute

        def locked(*args: Any, **kwargs: Any) -> Any:
            with owner._lock:
                result = owner._call(getattr(self._ensure(), name), *args, **kwargs)
                if name in _REPLAYED:
                    self._replay = [r for r in self._replay if r[0] != name]
                    self._replay.append((name, args, kwargs))
            if isinstance(result, types.GeneratorType):
                return self._locked_iteration(result)
            return _readable(result)

        return locked

    def _locked_iteration(self, generator: Iterator[Any]) -> Iterator[Any]:
        owner = self._owner
        while True:
            with owner._lock:
                try:
                    item = owner._call(next, generator)
                except StopIteration:
                    return
            yield item

    def __repr__(self) -> str:
        return f"<NotebookChannel {self.channel_number} of {self._owner!r}>"


class BrokerReply:
    """The broker's answer to a channel command, shown readably in a notebook.

    pika returns a ``frame.Method`` whose repr is a raw frame dump
    (``<METHOD(['channel_number=1', 'frame_type=1', …])>``); this wrapper shows
    ``Queue.DeclareOk(queue='my_queue', message_count=0, consumer_count=0)`` and passes every
    attribute through, so ``reply.method.queue`` works as with pika.
    """

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._frame, name)

    def __repr__(self) -> str:
        method = self._frame.method
        fields = ", ".join(f"{key}={value!r}" for key, value in vars(method).items())
        return f"{method.NAME}({fields})"


def _readable(result: Any) -> Any:
    """Wrap pika's method frames (the answers of declare, bind, …) in :class:`BrokerReply`."""
    from pika.frame import Method

    return BrokerReply(result) if isinstance(result, Method) else result


def notebook_connection(
    endpoints_or_url: Endpoints | str,
    *,
    heartbeat: int | None = None,
    name: str | None = None,
    key: str | None = None,
) -> NotebookConnection:
    """Open a :class:`NotebookConnection` (keep-alive plus reconnect on next use).

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints` or an ``amqp://`` URL.
        heartbeat: heartbeat interval in seconds.
        name: connection name in the management UI.
        key: registry key (default: ``name``); re-running the cell closes the previous
            connection of the same key. Without both, nothing is registered.

    Example:
        >>> connection = notebook_connection(endpoints, name="lab01")   # doctest: +SKIP
    """
    return NotebookConnection(endpoints_or_url, heartbeat=heartbeat, name=name,
                              key=key if key is not None else name)
