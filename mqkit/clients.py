"""The one place pika and paho objects are built, and connections that survive a notebook.

* :func:`amqp_connection` gives a plain pika ``BlockingConnection`` from mqkit's endpoints,
  with errors translated into mqkit's exception tree.
* :class:`NotebookConnection` is what a lab should hold across cells. pika's
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

* :func:`mqtt_client` and :func:`mqtt_connect` build and connect paho 2 clients.
* A registry of background workers (inbox consumer threads, paho ``loop_start`` threads,
  keep-alive threads) keyed by name: registering a new worker under a key stops the previous
  one, so a re-run cell does not leave threads behind.

Example:
    >>> connection = notebook_connection(name="lab01")      # doctest: +SKIP
    >>> channel = connection.channel()                       # doctest: +SKIP
    >>> channel.queue_declare(queue="my_queue", durable=True)  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import secrets
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from mqkit.brokers.readiness import raise_for_connack
from mqkit.exceptions import AuthenticationError, BrokerConnectionError, ConnectionLost
from mqkit.urls import BrokerAddress, parse_amqp_urls, parse_url

if TYPE_CHECKING:
    import paho.mqtt.client as paho_mqtt
    import pika

    from mqkit.brokers.base import Endpoints

log = logging.getLogger(__name__)

_HINT_RUNNING = "Is the broker running? `mqkit status` shows it; `mqkit up` starts it."


# -- endpoints -------------------------------------------------------------------------


def _endpoints(value: Endpoints | str | None) -> Endpoints | str:
    if value is None:
        from mqkit.launcher import start_brokers

        return start_brokers()
    return value


def resolve_amqp_url(endpoints_or_url: Endpoints | str | None = None) -> str:
    """The AMQP URL of ``endpoints_or_url``; with ``None``, of :func:`mqkit.start_brokers`."""
    value = _endpoints(endpoints_or_url)
    return value if isinstance(value, str) else value.amqp_url


def resolve_mqtt_url(endpoints_or_url: Endpoints | str | None = None) -> str:
    """The MQTT URL of ``endpoints_or_url``; with ``None``, of :func:`mqkit.start_brokers`."""
    value = _endpoints(endpoints_or_url)
    return value if isinstance(value, str) else value.mqtt_url


def _where(addresses: list[BrokerAddress]) -> str:
    return ", ".join(f"(host={a.host}, port={a.port}, vhost={a.vhost or '/'})"
                     for a in addresses)


# -- AMQP ------------------------------------------------------------------------------


def amqp_parameters(
    endpoints_or_url: Endpoints | str | None = None,
    *,
    heartbeat: int | None = None,
    name: str | None = None,
) -> list[pika.URLParameters]:
    """Build pika connection parameters for each (failover) AMQP URL.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``amqp://`` URL (commas separate
            failover URLs), or ``None`` to use :func:`mqkit.start_brokers`.
        heartbeat: heartbeat interval in seconds (``None``: the broker's proposal, 60 s).
        name: connection name shown in the management UI.
    """
    import pika

    url = resolve_amqp_url(endpoints_or_url)
    parse_amqp_urls(url)  # a clear ConfigError for a malformed URL, before pika sees it
    result = []
    for part in (p.strip() for p in url.split(",") if p.strip()):
        parameters = pika.URLParameters(part)
        if heartbeat is not None:
            parameters.heartbeat = heartbeat
        parameters.client_properties = {"connection_name": name or "mqkit"}
        result.append(parameters)
    return result


def _open_blocking(parameters: list[pika.URLParameters], url: str) -> pika.BlockingConnection:
    """Open a BlockingConnection, translating pika's errors into mqkit's."""
    import pika
    import pika.exceptions as pe

    where = _where(parse_amqp_urls(url))
    try:
        return pika.BlockingConnection(parameters)
    except pe.ProbableAccessDeniedError as exc:
        raise AuthenticationError(
            f"RabbitMQ refused access to the virtual host {where}: {exc}.",
            hint="The user exists but has no permissions on this vhost; check the vhost in "
                 "the AMQP URL (or grant permissions with mqkit.admin).") from None
    except (pe.ProbableAuthenticationError, pe.AuthenticationError) as exc:
        raise AuthenticationError(
            f"RabbitMQ refused the user name or password {where}: {exc}.",
            hint="Check the credentials in the AMQP URL; `mqkit status` shows the URL of "
                 "brokers mqkit started.") from None
    except (pe.AMQPError, OSError) as exc:
        reason = exc.args[0] if isinstance(exc, pe.AMQPConnectionError) and exc.args else exc
        raise BrokerConnectionError(f"No AMQP connection {where}: {reason!r}.",
                                    hint=_HINT_RUNNING) from None


def amqp_connection(
    endpoints_or_url: Endpoints | str | None = None,
    *,
    heartbeat: int | None = None,
    name: str | None = None,
) -> pika.BlockingConnection:
    """Open a plain pika ``BlockingConnection`` to mqkit's RabbitMQ.

    For a connection that a notebook keeps across cells, prefer :func:`notebook_connection`.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``amqp://`` URL, or ``None`` to use
            :func:`mqkit.start_brokers`.
        heartbeat: heartbeat interval in seconds (``None``: the broker's proposal).
        name: connection name shown in the management UI.

    Raises:
        AuthenticationError: wrong user name, password or vhost.
        BrokerConnectionError: the broker cannot be reached.

    Example:
        >>> connection = amqp_connection(mqkit.start_brokers())   # doctest: +SKIP
        >>> channel = connection.channel()                          # doctest: +SKIP
    """
    url = resolve_amqp_url(endpoints_or_url)
    return _open_blocking(amqp_parameters(url, heartbeat=heartbeat, name=name), url)


def _connection_errors() -> tuple[type[BaseException], ...]:
    import pika.exceptions as pe

    return (pe.AMQPConnectionError, pe.ConnectionWrongStateError)


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


class NotebookConnection:
    """A pika ``BlockingConnection`` that survives idle notebook cells and broker restarts.

    Use it like a ``BlockingConnection``: :meth:`channel`, :meth:`close`, ``with``. See the
    module docstring for how it stays alive (keep-alive thread, then reconnect on next use).

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``amqp://`` URL, or ``None``.
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
        >>> connection = NotebookConnection(name="lab01")   # doctest: +SKIP
        >>> channel = connection.channel()                   # doctest: +SKIP
        >>> channel.basic_publish("", "my_queue", b"Hello")  # doctest: +SKIP
    """

    def __init__(
        self,
        endpoints_or_url: Endpoints | str | None = None,
        *,
        heartbeat: int | None = None,
        name: str | None = None,
        keep_alive: bool = True,
        key: str | None = None,
    ) -> None:
        self.name = name or f"mqkit-{secrets.token_hex(3)}"
        self._url = resolve_amqp_url(endpoints_or_url)
        self._parameters = amqp_parameters(self._url, heartbeat=heartbeat, name=self.name)
        self._lock = threading.RLock()
        self._connection: pika.BlockingConnection | None = None
        self._generation = 0
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
        self._connection = _open_blocking(self._parameters, self._url)
        self._generation += 1

    def _ensure(self) -> pika.BlockingConnection:
        """The live connection, re-opened when it died (call with the lock held)."""
        if self._is_closed_by_user:
            raise ConnectionLost(f"The connection {self.name!r} was closed with .close().",
                                 hint="Open a new one with mqkit.clients.notebook_connection().")
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
            from mqkit.errors_amqp import translate_amqp_error

            during = getattr(function, "__name__", "a call")
            translated = translate_amqp_error(exc, during=during, args=args, kwargs=kwargs)
            if translated is not None:
                raise translated from exc
            if isinstance(exc, _connection_errors()):
                raise self._lost(exc, during) from None
            raise

    def _lost(self, exc: BaseException, during: str) -> ConnectionLost:
        return ConnectionLost(
            f"The connection {self.name!r} to RabbitMQ {_where(parse_amqp_urls(self._url))} "
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
        self._generation = -1
        self._is_closed_by_user = False
        self._replay: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _ensure(self) -> Any:
        """The live pika channel (call with the owner's lock held)."""
        owner = self._owner
        connection = owner._ensure()
        if self._is_closed_by_user:
            return self._raw  # pika itself reports use of a closed channel
        if (self._raw is None or self._generation != owner._generation
                or not self._raw.is_open):
            if self._raw is not None:
                log.info("re-opening a channel of %s", owner.name)
            self._raw = owner._call(connection.channel, self._number)
            self._generation = owner._generation
            for method, args, kwargs in self._replay:
                owner._call(getattr(self._raw, method), *args, **kwargs)
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
        owner = self._owner
        with owner._lock:
            raw = self._raw
            if raw is None or self._generation != owner._generation:
                raw = self._ensure()
            try:
                raw.basic_publish(exchange, routing_key, body, properties, mandatory)
            except Exception as exc:
                # Imported here, not per call: this is the publish hot path.
                import pika.exceptions as pe

                if isinstance(exc, pe.ChannelWrongStateError | pe.ConnectionWrongStateError):
                    # Raised before anything was sent, so publishing again cannot duplicate.
                    if self._is_closed_by_user:
                        raise
                    owner._call(self._ensure().basic_publish, exchange, routing_key, body,
                                properties, mandatory)
                elif isinstance(exc, _connection_errors()):
                    raise owner._lost(exc, "basic_publish") from None
                else:
                    raise

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
            return result

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


def notebook_connection(
    endpoints_or_url: Endpoints | str | None = None,
    *,
    heartbeat: int | None = None,
    name: str | None = None,
    key: str | None = None,
) -> NotebookConnection:
    """Open a :class:`NotebookConnection` (keep-alive plus reconnect on next use).

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``amqp://`` URL, or ``None`` to use
            :func:`mqkit.start_brokers`.
        heartbeat: heartbeat interval in seconds.
        name: connection name in the management UI.
        key: registry key (default: ``name``); re-running the cell closes the previous
            connection of the same key. Without both, nothing is registered.

    Example:
        >>> connection = notebook_connection(name="lab01")   # doctest: +SKIP
    """
    return NotebookConnection(endpoints_or_url, heartbeat=heartbeat, name=name,
                              key=key if key is not None else name)


# -- MQTT ------------------------------------------------------------------------------


def mqtt_client(
    endpoints_or_url: Endpoints | str | None = None,
    *,
    client_id: str | None = None,
    protocol: int | None = None,
    clean_session: bool | None = None,
) -> paho_mqtt.Client:
    """A paho-mqtt 2 ``Client`` (callback API version 2) with mqkit's credentials set.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``mqtt://`` URL, or ``None``.
        client_id: the MQTT client id (a random ``mqkit-…`` one by default).
        protocol: ``paho.mqtt.client.MQTTv311`` (default) or ``MQTTv5``.
        clean_session: MQTT 3.1.1 clean-session flag (``None``: paho's default).

    Example:
        >>> client = mqtt_client(client_id="sensor-1")         # doctest: +SKIP
        >>> mqtt_connect(client=client)                         # doctest: +SKIP
    """
    import paho.mqtt.client as mqtt

    address = parse_url(resolve_mqtt_url(endpoints_or_url), ("mqtt", "mqtts"), "mqtt_url")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=client_id or f"mqkit-{secrets.token_hex(4)}",
                         protocol=protocol if protocol is not None else mqtt.MQTTv311,
                         clean_session=clean_session)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.is_tls:
        client.tls_set()
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
        raise BrokerConnectionError(f"No MQTT connection {where}: {exc!r}.",
                                    hint=_HINT_RUNNING) from None
    loop = MQTTLoop(client, key)
    register(key, loop)
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise BrokerConnectionError(f"No CONNACK from the MQTT broker within {timeout} s "
                                        f"{where}.", hint=_HINT_RUNNING)
        raise_for_connack(answer[0], address)
    except BaseException:
        loop.stop()
        raise
    finally:
        client.on_connect = user_on_connect
    return client


# -- registry of background workers ----------------------------------------------------


class Stoppable(Protocol):
    """Anything the registry can stop: an inbox, an MQTT loop, a notebook connection."""

    def stop(self) -> None:
        """Stop background threads and close connections; idempotent."""


_REGISTRY: dict[str, Stoppable] = {}
_REGISTRY_LOCK = threading.Lock()


def register(key: str, worker: Stoppable) -> Stoppable | None:
    """Record ``worker`` under ``key``, stopping the worker registered there before.

    This is what makes a re-run cell safe: the new inbox (or MQTT loop) replaces the old
    one instead of running next to it. Returns the worker that was stopped, if any.
    """
    with _REGISTRY_LOCK:
        previous = _REGISTRY.get(key)
        _REGISTRY[key] = worker
    if previous is not None and previous is not worker:
        log.info("stopping the previous worker registered as %r", key)
        _stop_quietly(key, previous)  # its unregister() is a no-op: the key is ours now
        return previous
    return None


def unregister(key: str, worker: Stoppable | None = None) -> None:
    """Forget ``key`` (only if it still maps to ``worker``, when given); does not stop it."""
    with _REGISTRY_LOCK:
        if key in _REGISTRY and (worker is None or _REGISTRY[key] is worker):
            del _REGISTRY[key]


def stop(key: str) -> bool:
    """Stop and forget the worker registered under ``key``; False when there is none."""
    with _REGISTRY_LOCK:
        worker = _REGISTRY.pop(key, None)
    if worker is None:
        return False
    _stop_quietly(key, worker)
    return True


def stop_all() -> list[str]:
    """Stop every registered worker; return their keys (called at interpreter exit)."""
    with _REGISTRY_LOCK:
        items = list(_REGISTRY.items())
        _REGISTRY.clear()
    for key, worker in items:
        _stop_quietly(key, worker)
    return [key for key, _ in items]


def workers() -> dict[str, Stoppable]:
    """A snapshot of the registered workers by key."""
    with _REGISTRY_LOCK:
        return dict(_REGISTRY)


def _stop_quietly(key: str, worker: Stoppable) -> None:
    try:
        worker.stop()
    except Exception as exc:
        log.warning("stopping %r failed: %r", key, exc)


atexit.register(stop_all)
