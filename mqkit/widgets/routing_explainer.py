"""RoutingExplainer: which binding of an exchange matches a message, and why.

A thin view over :class:`RoutingExplainerModel`, which holds an exchange's type and bindings
(given, or read from the real broker through :mod:`mqkit.admin`) and judges every binding
with :func:`mqkit.routing.route`.

Example:
    >>> from mqkit.routing import Binding
    >>> model = RoutingExplainerModel("topic", [Binding("sports", "sports.#"),
    ...                                         Binding("tech", "#.technology")])
    >>> print(model.text("sports.technology"))
    exchange (topic), routing key 'sports.technology':
    ✔ sports  binding key 'sports.#'  `#` matches `technology`
    ✔ tech  binding key '#.technology'  `#` matches `sports`
    → delivered to: sports, tech
    >>> RoutingExplainer(endpoints, "lab05.blog")        # doctest: +SKIP
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from mqkit.exceptions import ConfigError
from mqkit.routing import Binding, Match, destinations, route

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)


def describe_binding(exchange_type: str, binding: Binding) -> str:
    """What a binding compares, in a few words (``binding key 'AAPL'``, the headers…)."""
    if exchange_type == "fanout":
        return "fanout binding"
    if exchange_type == "headers":
        # x-match first, then the rest sorted: the broker reports arguments in any order.
        keys = sorted(binding.arguments, key=lambda k: (k != "x-match", k))
        args = ", ".join(f"{k}={binding.arguments[k]!r}" for k in keys)
        return f"headers {{{args}}}" if args else "headers {}"
    return f"binding key {binding.binding_key!r}"


class RoutingExplainerModel:
    """An exchange's type and bindings, and the judgement of each binding for a message.

    Args:
        exchange_type: ``direct``, ``topic``, ``fanout`` or ``headers``.
        bindings: the exchange's bindings.
        exchange: its name (for the heading).
        endpoints: when set, :meth:`refresh` reads the bindings from the broker again.

    Raises:
        ConfigError: an unknown exchange type.
    """

    def __init__(self, exchange_type: str, bindings: Iterable[Binding] = (), *,
                 exchange: str = "", endpoints: Endpoints | None = None) -> None:
        route(exchange_type, [])  # rejects an unknown type early
        self.exchange_type = exchange_type
        self.bindings = list(bindings)
        self.exchange = exchange
        self.endpoints = endpoints
        # Bindings read from a broker exist there: judge them even where the model would
        # refuse one (a key with many '#' that RabbitMQ 3.10 and 4.0 accept).
        self.from_broker = False

    @classmethod
    def from_broker(cls, endpoints: Endpoints, exchange: str,
                    vhost: str | None = None) -> RoutingExplainerModel:
        """Read an exchange's type and bindings from the real broker (management API).

        Raises:
            ConfigError: the exchange does not exist (or the API refused the request).
        """
        model = cls("direct", exchange=exchange, endpoints=endpoints)
        model.refresh(vhost)
        return model

    def refresh(self, vhost: str | None = None) -> None:
        """Read the type and bindings again from the broker (needs ``endpoints``).

        Raises:
            ConfigError: no endpoints, or the exchange does not exist.
        """
        if self.endpoints is None:
            raise ConfigError("This explainer has no broker to read bindings from.",
                              hint="Create it with RoutingExplainerModel.from_broker(...).")
        from mqkit.admin import Admin

        admin = Admin(self.endpoints)
        vhost = vhost or self.endpoints.amqp.vhost or "/"
        kinds = {e["name"]: e["type"] for e in admin.exchanges(vhost)}
        if self.exchange not in kinds:
            raise ConfigError(f"There is no exchange {self.exchange!r} in vhost {vhost!r}.",
                              hint="Declare it first (channel.exchange_declare).")
        self.exchange_type = kinds[self.exchange]
        self.bindings = [
            Binding(b["destination"], b.get("routing_key", ""), dict(b.get("arguments") or {}),
                    b["destination_type"])
            for b in admin.bindings(vhost) if b["source"] == self.exchange]
        self.bindings.sort(key=lambda b: (b.destination, b.binding_key))
        self.from_broker = True

    def explain(self, routing_key: str = "",
                headers: Mapping[str, Any] | None = None) -> list[Match]:
        """Judge every binding for a message with this routing key and these headers."""
        return route(self.exchange_type, self.bindings, routing_key, headers,
                     accepted=self.from_broker)

    def lines(self, routing_key: str = "",
              headers: Mapping[str, Any] | None = None) -> list[str]:
        """The explanation as text lines: a heading, one line per binding, the verdict."""
        matches = self.explain(routing_key, headers)
        heading = f"{self.exchange or 'exchange'} ({self.exchange_type}), "
        heading += f"routing key {routing_key!r}"
        if headers:
            heading += f", headers {dict(headers)}"
        lines = [heading + ":"]
        if not matches:
            lines.append("(no bindings)")
        for match in matches:
            b = match.binding
            arrow = "exchange " if b.destination_type == "exchange" else ""
            lines.append(f"{'✔' if match else '✘'} {arrow}{b.destination}  "
                         f"{describe_binding(self.exchange_type, b)}  {match.reason}")
        lines.append(_verdict(matches))
        return lines

    def text(self, routing_key: str = "", headers: Mapping[str, Any] | None = None) -> str:
        """:meth:`lines` joined into one string."""
        return "\n".join(self.lines(routing_key, headers))

    def html(self, routing_key: str = "", headers: Mapping[str, Any] | None = None) -> str:
        """The explanation as an HTML table (escaped), with the verdict below it."""
        matches = self.explain(routing_key, headers)
        rows = []
        for match in matches:
            b = match.binding
            color = "#15803d" if match else "#b91c1c"
            kind = " (exchange)" if b.destination_type == "exchange" else ""
            rows.append(
                f'<tr><td style="color:{color};font-weight:bold">'
                f'{"✔ matched" if match else "✘ no"}</td>'
                f"<td><code>{html.escape(b.destination)}</code>{kind}</td>"
                f"<td><code>{html.escape(describe_binding(self.exchange_type, b))}</code></td>"
                f"<td>{html.escape(match.reason)}</td></tr>")
        if not rows:
            rows.append('<tr><td colspan="4">(no bindings)</td></tr>')
        return ("<table><thead><tr><th></th><th>destination</th><th>binding</th><th>why</th>"
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                f"<p><b>{html.escape(_verdict(matches))}</b></p>")


def _verdict(matches: list[Match]) -> str:
    targets = destinations(matches)
    if not targets:
        return ("→ unroutable: no binding matches (the broker drops the message, or returns "
                "it when published with mandatory=True)")
    return "→ delivered to: " + ", ".join(targets)


class RoutingExplainer(widgets.VBox):
    """Type a routing key and headers; see which bindings match and why.

    Either read an exchange from the broker (``endpoints`` and ``exchange``) or give the
    bindings (``exchange_type`` and ``bindings``). Errors are shown, not raised.

    Args:
        endpoints: the brokers to read the exchange from.
        exchange: the exchange's name.
        exchange_type: the type, when the bindings are given.
        bindings: the bindings, instead of reading them from the broker.
        routing_key: the initial routing key.
        headers: the initial headers.
        model: a ready :class:`RoutingExplainerModel` (then the above are ignored).

    Example:
        >>> RoutingExplainer(endpoints, "lab05.blog", routing_key="sports.football")
        ... # doctest: +SKIP
    """

    def __init__(self, endpoints: Endpoints | None = None, exchange: str = "", *,
                 exchange_type: str | None = None, bindings: Iterable[Binding] | None = None,
                 routing_key: str = "", headers: Mapping[str, Any] | None = None,
                 model: RoutingExplainerModel | None = None) -> None:
        import json

        self.status = widgets.Label()
        if model is None:
            if bindings is not None or endpoints is None:
                model = RoutingExplainerModel(exchange_type or "direct", bindings or (),
                                              exchange=exchange, endpoints=endpoints)
            else:
                model = RoutingExplainerModel(exchange_type or "direct", exchange=exchange,
                                              endpoints=endpoints)
                self._refresh_model(model)
        self.model = model
        self.routing_key = widgets.Text(routing_key, description="routing key",
                                        continuous_update=True)
        self.headers = widgets.Textarea(json.dumps(dict(headers)) if headers else "",
                                        description="headers", rows=2,
                                        placeholder="key=value per line, or a JSON object")
        self.refresh_button = widgets.Button(description="Re-read bindings", icon="refresh",
                                             disabled=model.endpoints is None)
        self.table = widgets.HTML()
        self.routing_key.observe(lambda _change: self.render(), names="value")
        self.headers.observe(lambda _change: self.render(), names="value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        super().__init__([self.routing_key, self.headers,
                          widgets.HBox([self.refresh_button, self.status]), self.table])
        self.render()

    def _refresh_model(self, model: RoutingExplainerModel) -> bool:
        try:
            model.refresh()
        except Exception as exc:
            log.info("reading bindings failed: %r", exc)
            self.status.value = f"could not read the bindings: {_short(exc)}"
            return False
        self.status.value = (f"{model.exchange} ({model.exchange_type}): "
                             f"{len(model.bindings)} binding(s) read from the broker")
        return True

    def refresh(self) -> None:
        """Read the bindings from the broker again and redraw."""
        if self._refresh_model(self.model):
            self.render()

    def render(self) -> None:
        """Judge the bindings for what the form holds; show the table or the error."""
        from mqkit.widgets.publisher import parse_headers

        try:
            headers = parse_headers(self.headers.value)
            self.table.value = self.model.html(self.routing_key.value, headers)
        except Exception as exc:
            self.table.value = f"<p style='color:#b91c1c'>{html.escape(_short(exc))}</p>"


def _short(exc: Exception) -> str:
    text = exc.message if isinstance(exc, ConfigError) else str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
