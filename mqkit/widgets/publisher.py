"""Publisher: a form that publishes one message per click, over a notebook-safe connection.

Example:
    >>> Publisher(endpoints, exchange="stocks", routing_key="AAPL")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from mqkit import clients
from mqkit.exceptions import ConfigError, ConnectionLost
from mqkit.widgets.publish_form import LABEL_STYLE, PublishForm, wide_layout

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)

CONTENT_TYPES = ("text/plain", "application/json")


@dataclass(slots=True, frozen=True)
class PublishResult:
    """What happened to one published message (a value: equal results may be one object).

    Attributes:
        ok: False when the broker returned it (unroutable) or nacked it.
        exchange: the exchange it went to.
        routing_key: its routing key.
        is_confirmed: True when the broker confirmed it (publisher confirms were on).
        detail: why it failed, or an empty string.
    """

    ok: bool
    exchange: str
    routing_key: str
    is_confirmed: bool = False
    detail: str = ""

    def __str__(self) -> str:
        where = f"exchange {self.exchange or '(default)'!r}, routing key {self.routing_key!r}"
        if not self.ok:
            return f"NOT DELIVERED to {where}: {self.detail}"
        how = "confirmed by the broker" if self.is_confirmed else "sent"
        return f"published to {where} ({how})"


def parse_headers(text: str) -> dict[str, Any] | None:
    """Headers typed by a student: a JSON object, or ``key=value`` lines (values as text).

    Blank lines and lines starting with ``#`` are ignored; ``None`` when there are none.

    Raises:
        ConfigError: a line without ``=``, or invalid JSON.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise ConfigError(f"The headers are not valid JSON: {exc}.",
                              hint='Write e.g. {"destination": "Berlin"}.') from None
        if not isinstance(value, dict):
            raise ConfigError("The headers must be a JSON object.",
                              hint='Write e.g. {"destination": "Berlin"}.')
        return value
    headers: dict[str, Any] = {}
    for line in stripped.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"Header line {line!r} has no '='.",
                              hint="Write one key=value per line, e.g. destination=Berlin.")
        headers[name.strip()] = value.strip()
    return headers or None


class PublisherModel:
    """Publishes messages over a :class:`~mqkit.clients.NotebookConnection`.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an AMQP URL, or ``None``.
        connection: a connection to share (then it is not closed by :meth:`close`).
        key: registry key; a new publisher with the same key (a re-run cell) closes this
            one. ``None`` registers nothing.
        name: connection name in the management UI.

    Attributes:
        published: how many messages were published.
    """

    def __init__(self, endpoints_or_url: Endpoints | str | None = None, *,
                 connection: clients.NotebookConnection | None = None,
                 key: str | None = None, name: str = "mqkit-publisher") -> None:
        self._owns_connection = connection is None
        self.connection = connection or clients.NotebookConnection(endpoints_or_url,
                                                                   name=name)
        self._channel = self.connection.channel()
        # Bound once: looking a method up on a NotebookChannel is slow (it has __getattr__).
        self._send = self._channel.basic_publish
        self._confirm_channel: clients.NotebookChannel | None = None
        self.published = 0
        self.key = key
        self._is_replaced = False
        self._last_properties: tuple[tuple[Any, ...], Any] | None = None
        self._last_sent = PublishResult(True, "", "")
        if key is not None:
            clients.register(key, self)

    def publish(
        self,
        exchange: str = "",
        routing_key: str = "",
        body: bytes | str | dict[str, Any] | list[Any] = b"",
        *,
        headers: dict[str, Any] | None = None,
        persistent: bool = False,
        content_type: str | None = None,
        mandatory: bool = False,
        confirm: bool | None = None,
        properties: Any = None,
    ) -> PublishResult:
        """Publish one message.

        Args:
            exchange: exchange name ('' = the default exchange).
            routing_key: routing key (the queue name on the default exchange).
            body: bytes or text; a dict or list is sent as JSON.
            headers: message headers (what a headers exchange matches on).
            persistent: delivery mode 2, so a durable queue keeps it across a restart.
            content_type: e.g. ``text/plain``.
            mandatory: ask the broker to return the message when no queue gets it.
            confirm: wait for the broker's confirm (default: when ``mandatory``), so an
                unroutable or nacked message shows up in the result.
            properties: a ready ``pika.BasicProperties`` (overrides the three above).

        Returns:
            The result; ``ok`` is False when the message was returned or nacked.

        Raises:
            ConnectionLost: the connection dropped (the next call reconnects).
            pika.exceptions.ChannelClosedByBroker: e.g. the exchange does not exist.
        """
        if self._is_replaced:
            raise ConnectionLost(
                f"This publisher was replaced by a newer one with the key {self.key!r}.",
                hint="Use the newer publisher, or pass different keys to keep both.")
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            content_type = content_type or "application/json"
        if properties is None and (headers or persistent or content_type):
            last = self._last_properties
            if last is None or last[0] != (headers, persistent, content_type):
                last = self._properties(headers, persistent, content_type)
            properties = last[1]
        if not (mandatory if confirm is None else confirm):
            self._send(exchange, routing_key, body, properties, mandatory)
            self.published += 1
            # Results are values: the last one serves again while the address is the same
            # (making one costs as much as the rest of this method).
            result = self._last_sent
            if result.routing_key != routing_key or result.exchange != exchange:
                result = self._last_sent = PublishResult(True, exchange, routing_key)
            return result
        return self._publish_confirmed(exchange, routing_key, body, properties, mandatory)

    def _properties(self, headers: dict[str, Any] | None, persistent: bool,
                    content_type: str | None) -> tuple[tuple[Any, ...], Any]:
        # Reused while they stay the same (publish compares them): building BasicProperties
        # per message would cost a tenth of the publish rate. The headers are copied, so a
        # dict changed in place after a publish is seen as new.
        import pika

        self._last_properties = ((dict(headers) if headers else None, persistent,
                                  content_type), pika.BasicProperties(
            headers=dict(headers) if headers else None, content_type=content_type,
            delivery_mode=pika.DeliveryMode.Persistent if persistent else None))
        return self._last_properties

    def _publish_confirmed(self, exchange: str, routing_key: str, body: Any,
                           properties: Any, mandatory: bool) -> PublishResult:
        import pika.exceptions as pe

        if self._confirm_channel is None:
            self._confirm_channel = self.connection.channel()
            self._confirm_channel.confirm_delivery()
        try:
            self._confirm_channel.basic_publish(exchange, routing_key, body, properties,
                                                mandatory)
        except pe.UnroutableError:
            return PublishResult(False, exchange, routing_key, True,
                                 "unroutable: no queue is bound with a matching key, so the "
                                 "broker returned it (mandatory)")
        except pe.NackError:
            return PublishResult(False, exchange, routing_key, True,
                                 "the broker refused it (nack), e.g. a full queue")
        self.published += 1
        return PublishResult(True, exchange, routing_key, True)

    def close(self) -> None:
        """Close the channels, and the connection when this model opened it."""
        if self._owns_connection:
            self.connection.close()
        else:
            for channel in (self._channel, self._confirm_channel):
                if channel is not None and not channel.is_closed:
                    channel.close()
        if self.key is not None:
            clients.unregister(self.key, self)

    def stop(self) -> None:
        """Called by the registry when a newer publisher takes this key."""
        self._is_replaced = True
        self.close()


class Publisher(PublishForm):
    """A form to publish messages: exchange, routing key, headers, properties and body.

    Unroutable messages are reported (the ``mandatory`` box, on by default, publishes with
    publisher confirms); errors are shown below the button, not raised.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an AMQP URL, or ``None``.
        exchange: initial exchange ('' = default exchange).
        routing_key: initial routing key.
        body: initial body.
        key: registry key: re-running the cell (a new Publisher with the same key) closes
            the previous one's connection. Give two publishers different keys.

    Example:
        >>> Publisher(mqkit.start_brokers(), routing_key="my_queue", body="Hello, world!")
        ... # doctest: +SKIP
    """

    def __init__(self, endpoints_or_url: Endpoints | str | None = None, *,
                 exchange: str = "", routing_key: str = "", body: str = "",
                 key: str | None = "publisher") -> None:
        self.model = PublisherModel(endpoints_or_url, key=key)
        self.exchange = widgets.Text(exchange, description="exchange",
                                     placeholder="'' = default exchange", style=LABEL_STYLE,
                                     layout=wide_layout())
        self.routing_key = widgets.Text(routing_key, description="routing key",
                                        style=LABEL_STYLE, layout=wide_layout())
        self.headers = widgets.Textarea(description="headers",
                                        placeholder="key=value per line, or a JSON object",
                                        rows=2, style=LABEL_STYLE, layout=wide_layout())
        self.body = widgets.Textarea(body, description="body", rows=3, style=LABEL_STYLE,
                                     layout=wide_layout())
        self.persistent = widgets.Checkbox(False, description="persistent", indent=False)
        self.mandatory = widgets.Checkbox(True, description="mandatory (report unroutable)",
                                          indent=False)
        self.content_type = widgets.Combobox(value="text/plain", options=CONTENT_TYPES,
                                             description="content type", style=LABEL_STYLE)
        self.button = widgets.Button(description="Publish", button_style="primary",
                                     icon="paper-plane")
        self.output = widgets.Output()
        self.button.on_click(lambda _button: self.publish())
        super().__init__([
            self.exchange, self.routing_key, self.headers, self.body, self.content_type,
            widgets.HBox([self.persistent, self.mandatory]), self.button, self.output])

    def publish(self) -> PublishResult | None:
        """Publish what the form holds; show the result or the error below the button."""
        return self._submit(lambda: self.model.publish(
            self.exchange.value, self.routing_key.value, self.body.value,
            headers=parse_headers(self.headers.value),
            persistent=self.persistent.value,
            content_type=self.content_type.value or None,
            mandatory=self.mandatory.value))

