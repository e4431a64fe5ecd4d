"""TopologyView: an SVG picture of a vhost's exchanges, bindings and queues.

mqkit draws the SVG itself (no graphviz binary): exchanges in the left column(s), an
exchange bound to another exchange one column further right, queues in the last column, and
one arrow per binding labelled with its routing key or header arguments.

Example:
    >>> from mqkit.widgets import TopologyView
    >>> TopologyView(endpoints)          # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import html
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from mqkit.admin import BindingInfo, Topology, fetch_topology
from mqkit.exceptions import ConfigError

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)

_NODE_W, _NODE_H = 190, 44
_COL_W, _ROW_H = 300, 64
_MARGIN, _TOP, _LANE_H = 16, 40, 16
_MAX_NAME = 26
_COLORS = {"direct": "#dbeafe", "topic": "#dcfce7", "fanout": "#fef3c7", "headers": "#fce7f3"}


@dataclass(frozen=True)
class _Box:
    x: float
    y: float

    @property
    def right(self) -> tuple[float, float]:
        return self.x + _NODE_W, self.y + _NODE_H / 2

    @property
    def left(self) -> tuple[float, float]:
        return self.x, self.y + _NODE_H / 2


def binding_label(binding: BindingInfo) -> str:
    """The text on a binding's arrow: header arguments, else the routing key."""
    if binding.arguments:
        return ", ".join(f"{k}={v}" for k, v in sorted(binding.arguments.items()))
    return binding.routing_key


def _short(text: str, limit: int = _MAX_NAME) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


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
    return level


def topology_svg(topology: Topology, *, title: str | None = None) -> str:
    """Draw ``topology`` as a standalone SVG document (a string).

    Bindings whose source exchange is not in ``topology.exchanges`` (the default exchange,
    ``amq.*`` when left out) are not drawn.

    Args:
        topology: exchanges, queues and bindings, e.g. from :func:`mqkit.admin.fetch_topology`.
        title: a heading; by default ``vhost <name>``.
    """
    exchange_names = [e.name for e in topology.exchanges]
    queue_names = {q.name for q in topology.queues}
    bindings = [b for b in topology.bindings if b.source in exchange_names and (
        b.destination in queue_names if b.destination_type == "queue"
        else b.destination in exchange_names)]
    level = _levels(exchange_names, bindings)
    columns = (max(level.values()) + 1) if level else 0

    # One arrow per source/destination pair, its label joining the routing keys of all
    # bindings between the two. An arrow that skips a column arcs over the boxes, each in
    # a lane of its own above them.
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for b in bindings:
        grouped.setdefault((b.source, b.destination_type, b.destination), []).append(
            binding_label(b))
    column_of = {("exchange", name): lvl for name, lvl in level.items()}
    column_of.update({("queue", name): columns for name in queue_names})
    lanes = {pair: lane for lane, pair in enumerate(
        pair for pair in sorted(grouped)
        if column_of[(pair[1], pair[2])] - column_of[("exchange", pair[0])] > 1)}
    top = _TOP + _LANE_H * len(lanes)

    boxes: dict[tuple[str, str], _Box] = {}
    rows: dict[str, int] = {}
    for column in range(columns):
        in_column = [e for e in exchange_names if level[e] == column]
        for row, name in enumerate(in_column):
            boxes[("exchange", name)] = _Box(_MARGIN + column * _COL_W, top + row * _ROW_H)
            rows[name] = row

    def queue_order(name: str) -> tuple[float, str]:
        sources = [rows[b.source] for b in bindings
                   if b.destination_type == "queue" and b.destination == name]
        return (min(sources) if sources else float("inf")), name

    for row, queue in enumerate(sorted(queue_names, key=queue_order)):
        boxes[("queue", queue)] = _Box(_MARGIN + columns * _COL_W, top + row * _ROW_H)

    width = _MARGIN * 2 + columns * _COL_W + (_NODE_W if queue_names else 0)
    height = top + _MARGIN + max(
        [b.y - top + _ROW_H for b in boxes.values()], default=_ROW_H)
    heading = title if title is not None else f"vhost {topology.vhost}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="mqkit-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<text x="{_MARGIN}" y="22" font-size="14" font-weight="bold">{_e(heading)}</text>',
    ]
    if not boxes:
        parts.append(f'<text x="{_MARGIN}" y="{_TOP + 20}" fill="#777">'
                     "no exchanges or queues</text>")

    # Arrows first, so boxes are drawn over their ends.
    for (source, kind, destination), labels in sorted(grouped.items()):
        x1, y1 = boxes[("exchange", source)].right
        x2, y2 = boxes[(kind, destination)].left
        label = " | ".join(sorted({lbl for lbl in labels if lbl}))
        lane = lanes.get((source, kind, destination))
        if lane is not None:  # the curve's middle then lies in the lane
            c1y = c2y = (_TOP + 4 + _LANE_H * lane - (y1 + y2) / 8) / 0.75
        else:
            c1y, c2y = y1, y2
        c1x, c2x = x1 + 50, x2 - 50
        parts.append(
            f'<g class="binding" data-source="{_e(source)}" data-destination="{_e(destination)}">'
            f'<path d="M {x1:.0f} {y1:.0f} C {c1x:.0f} {c1y:.0f} {c2x:.0f} {c2y:.0f} '
            f'{x2 - 2:.0f} {y2:.0f}" fill="none" stroke="#555" stroke-width="1.3" '
            'marker-end="url(#mqkit-arrow)"/>')
        if label:  # at the middle of the curve
            mx = (x1 + 3 * c1x + 3 * c2x + x2) / 8
            my = (y1 + 3 * c1y + 3 * c2y + y2) / 8 - 4
            parts.append(
                f'<title>{_e(label)}</title>'
                f'<text x="{mx:.0f}" y="{my:.0f}" text-anchor="middle" fill="#1f2937" '
                'stroke="white" stroke-width="3" paint-order="stroke">'
                f'{_e(_short(label, 36))}</text>')
        parts.append("</g>")

    for exchange in topology.exchanges:
        box = boxes[("exchange", exchange.name)]
        fill = _COLORS.get(exchange.type, "#e5e7eb")
        parts.append(
            f'<g class="exchange" data-exchange="{_e(exchange.name)}">'
            f'<title>exchange {_e(exchange.name or "(default)")} ({_e(exchange.type)})</title>'
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{_NODE_W}" height="{_NODE_H}" '
            f'rx="14" fill="{fill}" stroke="#374151"/>'
            f'<text x="{box.x + _NODE_W / 2:.0f}" y="{box.y + 18:.0f}" text-anchor="middle" '
            f'font-weight="bold">{_e(_short(exchange.name or "(default)"))}</text>'
            f'<text x="{box.x + _NODE_W / 2:.0f}" y="{box.y + 34:.0f}" text-anchor="middle" '
            f'fill="#4b5563">{_e(exchange.type)} exchange</text></g>')
    for queue in topology.queues:
        box = boxes[("queue", queue.name)]
        count = "? messages" if queue.messages is None else (
            f"{queue.messages} message" + ("" if queue.messages == 1 else "s"))
        flags = [flag for flag, on in (("durable", queue.durable),
                                       ("exclusive", queue.exclusive)) if on]
        parts.append(
            f'<g class="queue" data-queue="{_e(queue.name)}" '
            f'data-messages="{"" if queue.messages is None else queue.messages}">'
            f'<title>queue {_e(queue.name)} ({_e(", ".join(flags) or "transient")})</title>'
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{_NODE_W}" height="{_NODE_H}" '
            f'fill="#f3f4f6" stroke="#374151"/>'
            f'<text x="{box.x + _NODE_W / 2:.0f}" y="{box.y + 18:.0f}" text-anchor="middle" '
            f'font-weight="bold">{_e(_short(queue.name))}</text>'
            f'<text x="{box.x + _NODE_W / 2:.0f}" y="{box.y + 34:.0f}" text-anchor="middle" '
            f'fill="#4b5563">{_e(count)}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)


class TopologyModel:
    """Reads a vhost's topology from the broker and draws it.

    Args:
        endpoints: the brokers, from :func:`mqkit.start_brokers`.
        vhost: the virtual host to show.
        include_defaults: also show the default exchange and the ``amq.*`` exchanges.
        exact_counts: exact ready counts from the broker instead of lagging statistics.
    """

    def __init__(self, endpoints: Endpoints, vhost: str = "/", *,
                 include_defaults: bool = False, exact_counts: bool = True) -> None:
        if endpoints is None:
            raise ConfigError("TopologyView needs the brokers' endpoints.",
                              hint="endpoints = mqkit.start_brokers(); TopologyView(endpoints).")
        self.endpoints = endpoints
        self.vhost = vhost
        self.include_defaults = include_defaults
        self.exact_counts = exact_counts
        self.topology: Topology | None = None

    def fetch(self) -> Topology:
        """Read the topology now (management API plus exact counts)."""
        self.topology = fetch_topology(self.endpoints, self.vhost,
                                       include_defaults=self.include_defaults,
                                       exact_counts=self.exact_counts)
        return self.topology

    def svg(self) -> str:
        """Fetch and draw."""
        return topology_svg(self.fetch())


class TopologyView(widgets.VBox):
    """The SVG of a vhost's topology with a refresh button.

    Args:
        endpoints: the brokers, from :func:`mqkit.start_brokers`.
        vhost: the virtual host to show.
        include_defaults: also show the default exchange and the ``amq.*`` exchanges.
        model: a ready :class:`TopologyModel` (then the other arguments are ignored).

    Example:
        >>> TopologyView(mqkit.start_brokers())   # doctest: +SKIP
    """

    def __init__(self, endpoints: Endpoints | None = None, vhost: str = "/", *,
                 include_defaults: bool = False, model: TopologyModel | None = None) -> None:
        self.model = model or TopologyModel(endpoints, vhost, include_defaults=include_defaults)
        self.picture = widgets.HTML()
        self.status = widgets.Label()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        super().__init__([widgets.HBox([self.refresh_button, self.status]), self.picture])
        self.refresh()

    def refresh(self) -> None:
        """Read the broker again and redraw; an error is shown, not raised."""
        try:
            self.picture.value = self.model.svg()
        except Exception as exc:
            log.info("topology refresh failed: %r", exc)
            self.status.value = f"refresh failed: {type(exc).__name__}: {exc}"
            return
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        self.status.value = f"vhost {self.model.vhost} at {stamp}"
