"""TopologyView: an SVG picture of a vhost's exchanges, bindings and queues.

mqkit draws the SVG itself (no graphviz binary): exchanges in the left column(s), an
exchange bound to another exchange one column further right, queues in the last column.
Each source/destination pair gets one arrow, which ends in a *lane* of its own just left of
its destination: the lane's label (the routing keys, or a headers binding's arguments one per
line) sits on the arrow's last straight stretch, and a box grows to hold all its lanes, so no
two labels share space. Column gaps and the canvas grow with the text; a line too long is
shortened, with the full text in the arrow's ``<title>`` tooltip. An arrow pointing back (a
cycle of exchanges) runs in a lane of its own below the boxes.

Example:
    >>> from mqkit.widgets import TopologyView
    >>> TopologyView(endpoints, prefix="lab07.")          # doctest: +SKIP
    >>> TopologyView(endpoints, include_default=True)     # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import hashlib
import html
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from mqkit.admin import BindingInfo, ExchangeInfo, Topology, fetch_topology
from mqkit.exceptions import ConfigError

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)

#: What the default exchange (name ``""``) is called in the picture.
DEFAULT_EXCHANGE = "(default)"

_NODE_W, _NODE_H = 190, 44  # the smallest box
_MARGIN, _TOP, _V_GAP = 16, 40, 18
_CURVE_W = 72  # the part of a column gap where arrows bend; labels sit right of it
_LABEL_SIZE, _LINE_H = 11, 15
_MAX_NAME, _MAX_LINE, _MAX_JOINED = 32, 40, 28
_COLORS = {"direct": "#dbeafe", "topic": "#dcfce7", "fanout": "#fef3c7", "headers": "#fce7f3"}

# Widths in em, chosen at or above DejaVu Sans (the widest common sans-serif, what Debian's
# Chromium picks): an estimate that errs wide keeps text inside boxes and the canvas.
_NARROW = frozenset("ijlI.,:;'|! ")
_MEDIUM = frozenset("frt()[]-/\\\"*_`")
_WIDE = frozenset("mwMW%@#=<>+^~&")


def _text_width(text: str, size: float, *, bold: bool = False) -> float:
    ems = 0.0
    for char in text:
        if char in _NARROW:
            ems += 0.42
        elif char in _MEDIUM:
            ems += 0.55
        elif char in _WIDE or not char.isascii():
            ems += 1.02
        elif char.isupper() or char.isdigit():
            ems += 0.80
        else:
            ems += 0.66
    return ems * size * (1.12 if bold else 1.0)


def binding_label(binding: BindingInfo) -> str:
    """The text on a binding's arrow: header arguments, else the routing key."""
    if binding.arguments:
        return ", ".join(f"{k}={v}" for k, v in sorted(binding.arguments.items()))
    return binding.routing_key


def _full_label(binding: BindingInfo) -> str:
    """``binding_label`` with ``x-match`` first, as the labs write it."""
    if not binding.arguments:
        return binding.routing_key
    items = sorted(binding.arguments.items(), key=lambda kv: (kv[0] != "x-match", str(kv[0])))
    return ", ".join(f"{k}={v}" for k, v in items)


def _binding_lines(binding: BindingInfo, exchange_type: str) -> list[str]:
    """A binding's label as lines: one ``key=value`` a line, ``x-match`` as a prefix."""
    if not binding.arguments:
        return [binding.routing_key] if binding.routing_key else []
    arguments = dict(binding.arguments)
    match = arguments.pop("x-match", None)
    pairs = [f"{k}={v}" for k, v in sorted(arguments.items(), key=lambda kv: str(kv[0]))]
    if match is None and exchange_type != "headers":
        return pairs
    match = match or "all"  # RabbitMQ's default for a headers binding
    if not pairs:
        return [f"x-match={match}"]
    return [f"{match}: {pairs[0]}", *pairs[1:]]


def _lane_lines(bindings: list[BindingInfo], exchange_type: str) -> list[str]:
    keys = sorted({b.routing_key for b in bindings if not b.arguments and b.routing_key})
    joined = " | ".join(keys)
    lines = [joined] if keys and len(joined) <= _MAX_JOINED else keys
    for one in sorted({tuple(_binding_lines(b, exchange_type)) for b in bindings
                       if b.arguments}):
        lines.extend(one)
    return [_short(line, _MAX_LINE) for line in lines]


def _short(text: str, limit: int = _MAX_NAME) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _shown_name(name: str) -> str:
    return name or DEFAULT_EXCHANGE


def _prefixes(prefix: str | Iterable[str] | None) -> tuple[str, ...]:
    return (prefix,) if isinstance(prefix, str) else tuple(prefix or ())


def select_topology(topology: Topology, *, prefix: str | Iterable[str] | None = None,
                    include_default: bool = False) -> Topology:
    """The part of ``topology`` that is drawn.

    Keeps the exchanges and queues whose names start with ``prefix`` (any of them, when it
    is several) and the bindings whose both ends are kept. A binding whose source is not an
    exchange in ``topology`` (the default exchange, ``amq.*`` when left out) is dropped.

    Args:
        topology: e.g. from :func:`mqkit.admin.fetch_topology`.
        prefix: a name prefix such as ``"lab07."``, or several; ``None`` keeps everything.
        include_default: add the default exchange (``""``, direct) if missing, with its
            implicit binding to each kept queue (routing key = the queue's name). The
            default exchange is never removed by ``prefix``.

    Example:
        >>> select_topology(Topology([], [], []), prefix="lab07.").queues
        []
    """
    prefixes = _prefixes(prefix)

    def kept(name: str) -> bool:
        return not prefixes or name.startswith(prefixes)

    exchanges = [e for e in topology.exchanges if e.name == "" or kept(e.name)]
    queues = [q for q in topology.queues if kept(q.name)]
    exchange_names = {e.name for e in exchanges}
    queue_names = {q.name for q in queues}
    bindings = [b for b in topology.bindings if b.source in exchange_names and (
        b.destination in queue_names if b.destination_type == "queue"
        else b.destination in exchange_names)]
    if include_default:
        if "" not in exchange_names:
            exchanges = [ExchangeInfo("", "direct"), *exchanges]
        bound = {b.destination for b in bindings
                 if b.source == "" and b.destination_type == "queue"}
        bindings += [BindingInfo("", q.name, routing_key=q.name) for q in queues
                     if q.name not in bound]
    return Topology(exchanges, queues, bindings, topology.vhost)


def _levels(exchanges: list[str], bindings: list[BindingInfo]) -> dict[str, int]:
    """Column of each exchange: one right of every exchange bound to it (cycles bounded)."""
    level = dict.fromkeys(exchanges, 0)
    for _ in range(len(exchanges)):
        changed = False
        for b in bindings:
            if (b.destination_type == "exchange" and b.source in level
                    and b.destination in level and level[b.destination] <= level[b.source]
                    and level[b.source] + 1 < len(exchanges)):
                level[b.destination] = level[b.source] + 1
                changed = True
        if not changed:
            break
    used = sorted(set(level.values()))  # a cycle can leave a column empty: close it up
    return {name: used.index(column) for name, column in level.items()}


@dataclass
class _Lane:
    """One arrow: all bindings between one source and one destination."""

    source: str
    kind: str
    destination: str
    bindings: list[BindingInfo]
    lines: list[str]
    top: float = 0.0

    @property
    def height(self) -> float:
        return len(self.lines) * _LINE_H + 6 if self.lines else 8

    @property
    def arrow_y(self) -> float:
        """The arrow runs just below the label's last line."""
        return self.top + len(self.lines) * _LINE_H + 2 if self.lines else self.top + 4

    @property
    def label_width(self) -> float:
        return max((_text_width(line, _LABEL_SIZE) for line in self.lines), default=0.0)


@dataclass
class _Node:
    kind: str  # "exchange" or "queue"
    name: str
    column: int
    lines: tuple[str, str]  # bold name, then type or count
    lanes: list[_Lane] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0
    w: float = _NODE_W
    h: float = _NODE_H

    @property
    def text_width(self) -> float:
        return max(_text_width(self.lines[0], 12, bold=True), _text_width(self.lines[1], 12))


class _Layout:
    """Where every box, lane and label goes; all sizes from the text they hold."""

    def __init__(self, topology: Topology) -> None:
        types = {e.name: e.type for e in topology.exchanges}
        exchange_names = list(types)
        bindings = topology.bindings
        level = _levels(exchange_names, bindings)
        self.columns = (max(level.values()) + 1) if level else 0
        queue_column = self.columns
        self.nodes: dict[tuple[str, str], _Node] = {}
        for e in topology.exchanges:
            self.nodes[("exchange", e.name)] = _Node(
                "exchange", e.name, level[e.name],
                (_short(_shown_name(e.name)), f"{e.type} exchange"))
        for q in topology.queues:
            count = "? messages" if q.messages is None else (
                f"{q.messages} message" + ("" if q.messages == 1 else "s"))
            self.nodes[("queue", q.name)] = _Node("queue", q.name, queue_column,
                                                  (_short(q.name), count))
        if topology.queues:
            self.columns += 1

        grouped: dict[tuple[str, str, str], list[BindingInfo]] = {}
        for b in bindings:
            grouped.setdefault((b.source, b.destination_type, b.destination), []).append(b)
        self.lanes = [_Lane(s, k, d, grouped[(s, k, d)],
                            _lane_lines(grouped[(s, k, d)], types[s]))
                      for s, k, d in sorted(grouped)]

        # Depth-first from the left, the default exchange last: an exchange's own
        # exchanges follow it, and queues are stacked in the order of their sources, so
        # arrows run mostly level and cross little.
        order: dict[str, int] = {}
        targets = {name: sorted(b.destination for b in bindings
                                if b.source == name and b.destination_type == "exchange")
                   for name in exchange_names}
        for root in sorted(exchange_names, key=lambda n: (level[n], n == "", n)):
            stack = [root]
            while stack:
                name = stack.pop()
                if name not in order:
                    order[name] = len(order)
                    stack.extend(reversed(targets[name]))

        self.back: list[_Lane] = []
        for lane in self.lanes:
            source = self.nodes[("exchange", lane.source)]
            destination = self.nodes[(lane.kind, lane.destination)]
            if destination.column > source.column:
                destination.lanes.append(lane)
            else:
                self.back.append(lane)
        self.back_ids = {id(lane) for lane in self.back}
        for node in self.nodes.values():
            node.lanes.sort(key=lambda lane: (order[lane.source], lane.source))
            node.h = max(_NODE_H, sum(lane.height for lane in node.lanes) + 10)

        def queue_key(node: _Node) -> tuple[float, str]:
            sources = [order[lane.source] for lane in node.lanes if lane.source != ""]
            return (min(sources) if sources else float("inf")), node.name

        self.in_column: list[list[_Node]] = [[] for _ in range(self.columns)]
        for node in sorted(self.nodes.values(), key=lambda n: (
                queue_key(n) if n.kind == "queue" else (order[n.name], n.name))):
            self.in_column[node.column].append(node)
        self._place_columns()
        self._place_rows()

    def _place_columns(self) -> None:
        self.column_x: list[float] = []
        self.column_w: list[float] = []
        x = _MARGIN
        for column, nodes in enumerate(self.in_column):
            if column:
                labels = [lane.label_width for node in nodes for lane in node.lanes]
                x += _CURVE_W + (max(labels) + 16 if any(labels) else 12)
            width = max([_NODE_W] + [node.text_width + 24 for node in nodes])
            for node in nodes:
                node.x, node.w = x, width
            self.column_x.append(x)
            self.column_w.append(width)
            x += width

    def _place_rows(self) -> None:
        # Right to left: an exchange is centred on the arrows it sends, as far as the
        # exchanges above it in its column allow.
        for nodes in reversed(self.in_column):
            bottom = _TOP - _V_GAP
            for node in nodes:
                ends = [lane.arrow_y for lane in self.lanes
                        if lane.source == node.name and node.kind == "exchange"
                        and id(lane) not in self.back_ids]
                wanted = (min(ends) + max(ends)) / 2 - node.h / 2 if ends else _TOP
                node.y = max(wanted, bottom + _V_GAP)
                top = node.y + (node.h - sum(lane.height for lane in node.lanes)) / 2
                for lane in node.lanes:
                    lane.top = top
                    top += lane.height
                bottom = node.y + node.h
        y = max((node.y + node.h for node in self.nodes.values()), default=_TOP) + _V_GAP
        for lane in self.back:
            lane.top = y
            y += lane.height + 4
        self.bottom = y - (4 if self.back else _V_GAP)

    def back_label_x(self, lane: _Lane) -> float:
        source = self.nodes[("exchange", lane.source)]
        destination = self.nodes[(lane.kind, lane.destination)]
        return min(source.x + source.w / 2, destination.x + destination.w / 2) + 6


def _describe(topology: Topology) -> str:
    """The picture in words, for a screen reader."""
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}" + ("" if n == 1 else "s")

    types = {e.name: e.type for e in topology.exchanges}
    sentences = [f"{count(len(topology.exchanges), 'exchange')}, "
                 f"{count(len(topology.queues), 'queue')}, "
                 f"{count(len(topology.bindings), 'binding')}."]
    for b in sorted(topology.bindings, key=lambda b: (b.source, b.destination,
                                                      b.routing_key)):
        source = ("The default exchange" if b.source == ""
                  else f"Exchange {b.source} ({types.get(b.source, '?')})")
        if b.arguments:
            how = f"when the headers match {_full_label(b)}"
        elif b.source == "" and b.routing_key == b.destination:
            how = f"with routing key {b.routing_key} (implicit binding)"
        elif b.routing_key:
            how = f"with binding key {b.routing_key}"
        else:
            how = "with no binding key"
        sentences.append(f"{source} routes to {b.destination_type} {b.destination} {how}.")
    for q in topology.queues:
        held = "an unknown number of messages" if q.messages is None else count(
            q.messages, "message")
        sentences.append(f"Queue {q.name} holds {held}.")
    return " ".join(sentences)


def topology_svg(topology: Topology, *, title: str | None = None,
                 prefix: str | Iterable[str] | None = None,
                 include_default: bool = False) -> str:
    """Draw ``topology`` as a standalone SVG document (a string).

    A pure function of its arguments (no broker). Bindings whose source exchange is not in
    ``topology.exchanges`` (the default exchange, ``amq.*`` when left out) are not drawn,
    unless ``include_default`` adds the default exchange.

    Args:
        topology: exchanges, queues and bindings, e.g. from :func:`mqkit.admin.fetch_topology`.
        title: a heading; by default ``vhost <name>``. Also the SVG's accessible ``<title>``
            (by default ``Topology of vhost <name>``).
        prefix: draw only exchanges and queues whose names start with it (or with one of
            several), e.g. ``"lab07."``; see :func:`select_topology`.
        include_default: draw the default exchange with its implicit binding to each queue.

    Example:
        >>> svg = topology_svg(Topology([], [], [], vhost="/"), prefix="lab07.")
        >>> 'role="img"' in svg
        True
    """
    shown = select_topology(topology, prefix=prefix, include_default=include_default)
    layout = _Layout(shown)
    prefixes = _prefixes(prefix)
    scope = f" (prefix {' or '.join(prefixes)})" if prefixes else ""
    heading = title if title is not None else f"vhost {topology.vhost}{scope}"
    label = title if title is not None else f"Topology of vhost {topology.vhost}{scope}"

    width = max(layout.column_x[-1] + layout.column_w[-1] if layout.columns else 0,
                _text_width(heading, 14, bold=True) + _MARGIN,
                _text_width("no exchanges or queues", 12) + _MARGIN,
                *(layout.back_label_x(lane) + lane.label_width for lane in layout.back)
                ) + _MARGIN
    height = max(layout.bottom, _TOP + _NODE_H) + _MARGIN
    uid = "mqkit-topology-" + hashlib.sha1(
        repr((shown, heading, label)).encode(), usedforsecurity=False).hexdigest()[:10]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12" '
        f'role="img" aria-labelledby="{uid}-title {uid}-desc">',
        f'<title id="{uid}-title">{_e(label)}</title>',
        f'<desc id="{uid}-desc">{_e(_describe(shown))}</desc>',
        '<defs><marker id="mqkit-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<text x="{_MARGIN}" y="22" font-size="14" font-weight="bold">{_e(heading)}</text>',
    ]
    if not layout.nodes:
        parts.append(f'<text x="{_MARGIN}" y="{_TOP + 20}" fill="#777">'
                     "no exchanges or queues</text>")

    # Where each arrow leaves its exchange: spread over the right edge in the order of
    # the lanes they reach, so arrows from one box do not cross each other.
    ports: dict[int, float] = {}
    for node in layout.nodes.values():
        leaving = sorted((lane for lane in layout.lanes
                          if lane.source == node.name and node.kind == "exchange"
                          and id(lane) not in layout.back_ids), key=lambda lane: lane.arrow_y)
        for i, lane in enumerate(leaving):
            ports[id(lane)] = node.y + node.h * (i + 1) / (len(leaving) + 1)

    # Arrows first, so boxes are drawn over their ends; each label on its own arrow.
    for lane in layout.lanes:
        source = layout.nodes[("exchange", lane.source)]
        destination = layout.nodes[(lane.kind, lane.destination)]
        whole = "; ".join(_full_label(b) or "(no key)" for b in lane.bindings)
        tooltip = (f"{_shown_name(lane.source)} → {lane.kind} {_shown_name(lane.destination)}"
                   f": {whole}")
        parts.append(f'<g class="binding" data-source="{_e(lane.source)}" '
                     f'data-destination="{_e(lane.destination)}"><title>{_e(tooltip)}</title>')
        y2 = lane.arrow_y
        if id(lane) in layout.back_ids:  # down from the source, along its lane, up to the target
            x1, y1 = source.x + source.w / 2, source.y + source.h
            x2, end = destination.x + destination.w / 2, destination.y + destination.h
            path = f"M {x1:.1f} {y1:.1f} L {x1:.1f} {y2:.1f} L {x2:.1f} {y2:.1f} " \
                   f"L {x2:.1f} {end + 1:.1f}"
            text_x, anchor = layout.back_label_x(lane), "start"
            dash = ' stroke-dasharray="5 3"'
        else:  # bend in the gap right of the source, then straight on to the target
            x1, y1 = source.x + source.w, ports[id(lane)]
            bend = layout.column_x[source.column] + layout.column_w[source.column] + _CURVE_W
            middle = (x1 + bend) / 2
            path = (f"M {x1:.1f} {y1:.1f} C {middle:.1f} {y1:.1f} {middle:.1f} {y2:.1f} "
                    f"{bend:.1f} {y2:.1f} L {destination.x - 1:.1f} {y2:.1f}")
            text_x, anchor, dash = destination.x - 8, "end", ""
        parts.append(f'<path d="{path}" fill="none" stroke="#555" stroke-width="1.3"{dash} '
                     'marker-end="url(#mqkit-arrow)"/>')
        for i, line in enumerate(lane.lines):
            parts.append(
                f'<text x="{text_x:.1f}" y="{lane.top + 11 + i * _LINE_H:.1f}" '
                f'text-anchor="{anchor}" font-size="{_LABEL_SIZE}" fill="#1f2937" '
                f'stroke="white" stroke-width="3" paint-order="stroke">{_e(line)}</text>')
        parts.append("</g>")

    for exchange in shown.exchanges:
        node = layout.nodes[("exchange", exchange.name)]
        fill = _COLORS.get(exchange.type, "#e5e7eb")
        parts.append(
            f'<g class="exchange" data-exchange="{_e(exchange.name)}">'
            f'<title>exchange {_e(_shown_name(exchange.name))} ({_e(exchange.type)})</title>'
            f'<rect x="{node.x:.0f}" y="{node.y:.1f}" width="{node.w:.0f}" '
            f'height="{node.h:.0f}" rx="14" fill="{fill}" stroke="#374151"/>'
            + _node_text(node) + "</g>")
    for queue in shown.queues:
        node = layout.nodes[("queue", queue.name)]
        flags = [flag for flag, on in (("durable", queue.durable),
                                       ("exclusive", queue.exclusive)) if on]
        parts.append(
            f'<g class="queue" data-queue="{_e(queue.name)}" '
            f'data-messages="{"" if queue.messages is None else queue.messages}">'
            f'<title>queue {_e(queue.name)} ({_e(", ".join(flags) or "transient")})</title>'
            f'<rect x="{node.x:.0f}" y="{node.y:.1f}" width="{node.w:.0f}" '
            f'height="{node.h:.0f}" fill="#f3f4f6" stroke="#374151"/>'
            + _node_text(node) + "</g>")
    parts.append("</svg>")
    return "\n".join(parts)


def _node_text(node: _Node) -> str:
    x, middle = node.x + node.w / 2, node.y + node.h / 2
    return (f'<text x="{x:.1f}" y="{middle - 4:.1f}" text-anchor="middle" '
            f'font-weight="bold">{_e(node.lines[0])}</text>'
            f'<text x="{x:.1f}" y="{middle + 12:.1f}" text-anchor="middle" '
            f'fill="#4b5563">{_e(node.lines[1])}</text>')


class TopologyModel:
    """Reads a vhost's topology from the broker and draws it.

    Args:
        endpoints: the brokers, from :func:`mqkit.start_brokers`.
        vhost: the virtual host to show.
        include_defaults: also show the default exchange and the ``amq.*`` exchanges.
        exact_counts: exact ready counts from the broker instead of lagging statistics.
        include_default: also show the default exchange (not ``amq.*``), with its implicit
            binding to each queue shown.
        prefix: show only exchanges and queues whose names start with it (or with one of
            several), e.g. ``"lab07."``.
    """

    def __init__(self, endpoints: Endpoints, vhost: str = "/", *,
                 include_defaults: bool = False, exact_counts: bool = True,
                 include_default: bool = False,
                 prefix: str | Iterable[str] | None = None) -> None:
        if endpoints is None:
            raise ConfigError("TopologyView needs the brokers' endpoints.",
                              hint="endpoints = mqkit.start_brokers(); TopologyView(endpoints).")
        self.endpoints = endpoints
        self.vhost = vhost
        self.include_defaults = include_defaults
        self.include_default = include_default
        self.prefix = prefix if isinstance(prefix, str) or prefix is None else tuple(prefix)
        self.exact_counts = exact_counts
        self.topology: Topology | None = None

    def fetch(self) -> Topology:
        """Read the topology now (management API plus exact counts), before any filter."""
        self.topology = fetch_topology(self.endpoints, self.vhost,
                                       include_defaults=self.include_defaults,
                                       exact_counts=self.exact_counts)
        return self.topology

    def svg(self) -> str:
        """Fetch and draw (with the prefix filter and the default exchange as asked)."""
        return topology_svg(self.fetch(), prefix=self.prefix,
                            include_default=self.include_default)


class TopologyView(widgets.VBox):
    """The SVG of a vhost's topology with a refresh button.

    Args:
        endpoints: the brokers, from :func:`mqkit.start_brokers`.
        vhost: the virtual host to show.
        include_defaults: also show the default exchange and the ``amq.*`` exchanges.
        model: a ready :class:`TopologyModel` (then the other arguments are ignored).
        include_default: also show the default exchange (``""``, direct; not ``amq.*``)
            with its implicit binding to each queue shown.
        prefix: show only exchanges and queues whose names start with it, e.g. ``"lab07."``
            (or with one of several, e.g. ``("lab03.", "my_queue")``).

    Example:
        >>> TopologyView(mqkit.start_brokers(), prefix="lab07.")   # doctest: +SKIP
    """

    def __init__(self, endpoints: Endpoints | None = None, vhost: str = "/", *,
                 include_defaults: bool = False, model: TopologyModel | None = None,
                 include_default: bool = False,
                 prefix: str | Iterable[str] | None = None) -> None:
        self.model = model or TopologyModel(endpoints, vhost, include_defaults=include_defaults,
                                            include_default=include_default, prefix=prefix)
        self.picture = widgets.HTML()
        self.status = widgets.Label()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        super().__init__([widgets.HBox([self.refresh_button, self.status]), self.picture])
        self.refresh()

    def refresh(self) -> None:
        """Read the broker again and redraw; an error is shown, not raised."""
        try:
            svg = self.model.svg()
        except Exception as exc:
            log.info("topology refresh failed: %r", exc)
            self.status.value = f"refresh failed: {type(exc).__name__}: {exc}"
            return
        # A picture wider than the output area scrolls instead of being squeezed.
        self.picture.value = f'<div style="overflow-x: auto; max-width: 100%">{svg}</div>'
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        self.status.value = f"vhost {self.model.vhost} at {stamp}"
