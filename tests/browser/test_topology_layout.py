"""TopologyView's layout, measured by a real browser: labels inside the picture, off each other.

Every lab's exchanges, queues and bindings are written down here as data (what
``labs/_src/NN-*.py`` declares). ``topology_svg`` draws them; headless Debian Chromium,
driven by Playwright, loads each SVG and measures every ``<text>`` with ``getBBox()`` (and
``getBoundingClientRect()``): no text may reach outside the canvas, no two texts may overlap,
a box's text stays in its box and a binding's label stays off every box. The layout's own
width estimate is not trusted: only the browser's font metrics count. Checked per lab (the
view a lab should show, e.g. ``prefix="lab07."``) and for the crowded vhost a student has by
lab 07 when nothing is filtered. Screenshots go to ``test-artifacts/browser/topology/``.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
from pathlib import Path

import pytest

from mqkit.admin import BindingInfo, ExchangeInfo, QueueInfo, Topology
from mqkit.widgets.topology import topology_svg
from tests.helpers import require

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser" / "topology"
CHROMIUM = os.environ.get("MQKIT_TEST_CHROMIUM", "/usr/bin/chromium")
#: The flags that work on the CI machines (closed network, root, no GPU).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: Pixels two boxes may share (anti-aliasing and rounding), and a box may stick out.
TOLERANCE = 0.5
Q = QueueInfo


def E(name: str, kind: str) -> ExchangeInfo:
    return ExchangeInfo(name, kind)


def B(source: str, destination: str, key: str = "", kind: str = "queue",
      arguments: dict | None = None) -> BindingInfo:
    return BindingInfo(source, destination, kind, key, arguments or {})


#: What each lab declares in RabbitMQ's vhost ``/`` (server-named queues with made-up names).
LABS: dict[str, Topology] = {
    "00": Topology([], [], []),  # start-up only
    "01": Topology([], [Q("lab01.hello", 1)], []),
    "02": Topology([], [Q("my_queue", 0), Q("lab02.bounded", 1), Q("lab02.quorum", 0),
                        Q("lab02.scratch", 0), Q("lab02.orders", 1),
                        Q("amq.gen-4pQ2uTzJcV9mN1xR7sWkLa", 0, durable=False, exclusive=True)],
                   []),
    "03": Topology([], [Q("my_queue", 0), Q("lab03.live", 0), Q("lab03.tasks", 0),
                        Q("lab03.work", 0)], []),  # all through the default exchange
    "04": Topology(
        [E("lab04.stocks", "direct")],
        [Q("lab04.AAPL", 2), Q("lab04.MSFT", 1), Q("lab04.GOOG", 1), Q("lab04.portfolio", 2)],
        [B("lab04.stocks", "lab04.AAPL", "AAPL"), B("lab04.stocks", "lab04.MSFT", "MSFT"),
         B("lab04.stocks", "lab04.GOOG", "GOOG"), B("lab04.stocks", "lab04.portfolio", "AAPL"),
         B("lab04.stocks", "lab04.portfolio", "MSFT")]),
    "05": Topology(
        [E("lab05.blog", "topic")],
        [Q("lab05.sports", 3), Q("lab05.technology", 2), Q("lab05.reviews", 1),
         Q("lab05.my-feed", 4)],
        [B("lab05.blog", "lab05.sports", "sports.#"),
         B("lab05.blog", "lab05.technology", "#.technology"),
         B("lab05.blog", "lab05.reviews", "*.review"),
         B("lab05.blog", "lab05.my-feed", "sports.#"),
         B("lab05.blog", "lab05.my-feed", "#.technology")]),
    "06": Topology(
        [E("lab06.notifications", "fanout"), E("lab06.audit", "fanout")],
        [*(Q(f"lab06.user-{user}", 2) for user in "ABCDE"), Q("lab06.audit-log", 1),
         Q("amq.gen-Tab1xVb3QkW9eR2yU5iO7p", 1, durable=False, exclusive=True),
         Q("amq.gen-Tab2LmN8sD4fG6hJ1kZ3xC", 0, durable=False, exclusive=True)],
        [*(B("lab06.notifications", f"lab06.user-{user}") for user in "ABCDE"),
         B("lab06.notifications", "amq.gen-Tab1xVb3QkW9eR2yU5iO7p"),
         B("lab06.notifications", "amq.gen-Tab2LmN8sD4fG6hJ1kZ3xC"),
         B("lab06.notifications", "lab06.audit", kind="exchange"),
         B("lab06.audit", "lab06.audit-log")]),
    "07": Topology(
        [E("lab07.logistics", "headers")],
        [Q("lab07.berlin-depot", 2), Q("lab07.express-desk", 3), Q("lab07.tenant-acme", 1),
         Q("lab07.berlin-express", 1)],
        [B("lab07.logistics", "lab07.berlin-depot",
           arguments={"x-match": "all", "destination": "Berlin"}),
         B("lab07.logistics", "lab07.express-desk",
           arguments={"x-match": "any", "delivery_method": "express", "priority": "high"}),
         B("lab07.logistics", "lab07.tenant-acme",
           arguments={"x-match": "any-with-x", "x-tenant": "acme"}),
         B("lab07.logistics", "lab07.berlin-express",
           arguments={"x-match": "all", "destination": "Berlin",
                      "delivery_method": "express"})]),
    "08": Topology([], [Q("lab08.requests", 0),
                        Q("amq.gen-Rpc9sQ1wE3rT5yU7iO9pA2", 0, durable=False, exclusive=True)],
                   []),  # requests and replies through the default exchange
    "09": Topology(
        [E("lab09.nowhere", "direct"), E("lab09.dlx", "fanout")],
        [Q("lab09.orders", 1), Q("lab09.scratch", 0), Q("lab09.full", 1), Q("lab09.dead", 2),
         Q("lab09.work", 0), Q("lab09.ttl", 0), Q("lab09.crash", 0), Q("lab09.bench", 0)],
        [B("lab09.dlx", "lab09.dead")]),  # work and ttl dead-letter to lab09.dlx (arguments)
    "10": Topology([], [], []),  # MQTT: Mosquitto, nothing in RabbitMQ
}

#: The TopologyView arguments each lab should use (its names, the default exchange in 03).
VIEWS: dict[str, dict] = {
    lab: {"prefix": f"lab{lab}."} for lab in LABS} | {
    "02": {"prefix": ("lab02.", "my_queue")},
    "03": {"prefix": ("lab03.", "my_queue"), "include_default": True},
    "08": {"prefix": "lab08.", "include_default": True},
}


def crowded() -> Topology:
    """Every lab's objects in one vhost, as a student has them late in the course."""
    exchanges = {e.name: e for lab in LABS.values() for e in lab.exchanges}
    queues = {q.name: q for lab in LABS.values() for q in lab.queues}
    bindings = [b for lab in LABS.values() for b in lab.bindings]
    return Topology(sorted(exchanges.values(), key=lambda e: e.name),
                    sorted(queues.values(), key=lambda q: q.name), bindings)


#: Reads, for every <text>, its getBBox() in SVG units and its client rect relative to the
#: <svg>; and the boxes (<rect> of exchanges and queues).
MEASURE = """() => {
  const svg = document.querySelector('svg');
  const frame = svg.getBoundingClientRect();
  const vb = svg.viewBox.baseVal;
  const box = (b) => ({x: b.x, y: b.y, w: b.width, h: b.height});
  const client = (el) => {
    const r = el.getBoundingClientRect();
    return {x: r.left - frame.left, y: r.top - frame.top, w: r.width, h: r.height};
  };
  const group = (el) => el.closest('g');
  return {
    viewBox: [vb.x, vb.y, vb.width, vb.height],
    width: svg.width.baseVal.value, height: svg.height.baseVal.value,
    client: {w: frame.width, h: frame.height},
    texts: [...svg.querySelectorAll('text')].map((t, i) => ({
      i, text: t.textContent, bbox: box(t.getBBox()), rect: client(t),
      group: group(t) ? group(t).getAttribute('class') : null,
      owner: group(t) ? [...svg.querySelectorAll('g')].indexOf(group(t)) : -1})),
    boxes: [...svg.querySelectorAll('g.exchange > rect, g.queue > rect')].map(r => ({
      bbox: box(r.getBBox()), owner: [...svg.querySelectorAll('g')].indexOf(group(r))})),
    labelledby: svg.getAttribute('aria-labelledby'),
    title: svg.querySelector(':scope > title')?.textContent,
  };
}"""


@pytest.fixture(scope="module")
def page():
    require(importlib.util.find_spec("playwright") is not None,
            "Playwright for Python is not installed (pip install playwright)")
    require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("*.png"):
        stale.unlink()  # only this run's pictures
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def measure(page, svg: str, name: str) -> dict:
    """Show ``svg`` alone in the page, measure it, save its screenshot as ``name``.png."""
    width, height = (float(v) for v in svg.split('viewBox="0 0 ')[1].split('"')[0].split())
    page.set_viewport_size({"width": math.ceil(width) + 16, "height": math.ceil(height) + 16})
    page.set_content('<!doctype html><html><body style="margin:8px;background:white">'
                     f"{svg}</body></html>")
    page.evaluate("document.fonts.ready")
    page.locator("svg").screenshot(path=ARTIFACTS / f"{name}.png")
    return page.evaluate(MEASURE)


def inside(inner: dict, outer: dict) -> bool:
    return (inner["x"] >= outer["x"] - TOLERANCE and inner["y"] >= outer["y"] - TOLERANCE
            and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + TOLERANCE
            and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + TOLERANCE)


def overlap(a: dict, b: dict) -> bool:
    """True when the boxes share more than TOLERANCE in both directions (touching is fine)."""
    dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return dx > TOLERANCE and dy > TOLERANCE


def check_layout(found: dict) -> list[str]:
    """Everything wrong with the measured picture, in words (empty when legible)."""
    problems = []
    x0, y0, vb_w, vb_h = found["viewBox"]
    canvas = {"x": x0, "y": y0, "w": vb_w, "h": vb_h}
    client_canvas = {"x": 0, "y": 0, "w": found["client"]["w"], "h": found["client"]["h"]}
    if (vb_w, vb_h) != (found["width"], found["height"]):
        problems.append(f"viewBox {vb_w}x{vb_h} is not the size {found['width']}x"
                        f"{found['height']}")
    texts = found["texts"]
    for t in texts:
        if t["bbox"]["w"] <= 0:
            problems.append(f"{t['text']!r} has no width (no font?)")
        if not inside(t["bbox"], canvas) or not inside(t["rect"], client_canvas):
            problems.append(f"{t['text']!r} {t['bbox']} reaches outside the canvas {canvas}")
    for a, b in itertools.combinations(texts, 2):
        if overlap(a["bbox"], b["bbox"]) or overlap(a["rect"], b["rect"]):
            problems.append(f"{a['text']!r} {a['bbox']} overlaps {b['text']!r} {b['bbox']}")
    for t in texts:
        own = [box for box in found["boxes"] if box["owner"] == t["owner"]]
        if t["group"] in ("exchange", "queue") and not inside(t["bbox"], own[0]["bbox"]):
            problems.append(f"{t['text']!r} {t['bbox']} sticks out of its box {own[0]}")
        if t["group"] == "binding":
            for box in found["boxes"]:
                if overlap(t["bbox"], box["bbox"]):
                    problems.append(f"label {t['text']!r} {t['bbox']} lies on a box {box}")
    return problems


def summary(found: dict) -> dict:
    labels = [t for t in found["texts"] if t["group"] == "binding"]
    return {"canvas": [found["width"], found["height"]], "texts": len(found["texts"]),
            "label_lines": len(labels),
            "widest_label": max((round(t["bbox"]["w"], 1) for t in labels), default=0)}


@pytest.fixture(scope="module")
def report():
    """Measured figures per picture, written next to the screenshots."""
    figures: dict[str, dict] = {}
    yield figures
    (ARTIFACTS / "summary.json").write_text(json.dumps(figures, indent=2, sort_keys=True))


@pytest.mark.parametrize("lab", sorted(LABS))
def test_each_lab_picture_is_legible(page, report, lab):
    everything = crowded()
    svg = topology_svg(everything, **VIEWS[lab])
    found = measure(page, svg, f"lab{lab}")
    report[f"lab{lab}"] = summary(found)
    assert check_layout(found) == []
    assert found["title"].startswith("Topology of vhost / (prefix lab")
    assert found["labelledby"].count("mqkit-topology-") == 2
    # The prefix picks out exactly this lab's objects from the crowded vhost.
    own = LABS[lab]
    shown = {t["text"] for t in found["texts"] if t["group"] in ("exchange", "queue")}
    expected = {e.name for e in own.exchanges} | {
        q.name for q in own.queues if not q.name.startswith("amq.gen-")}
    if VIEWS[lab].get("include_default"):
        expected.add("(default)")
    assert expected <= shown
    if VIEWS[lab].get("include_default") or any(b.routing_key or b.arguments
                                                for b in own.bindings):
        assert report[f"lab{lab}"]["label_lines"] > 0  # the labels were drawn, and measured


def adversarial() -> Topology:
    """Wide letters, long names and keys, a chain and a cycle of exchanges, non-ASCII."""
    wide = "WM" * 19
    return Topology(
        [E("a", "topic"), E("b", "direct"), E("c", "fanout"), E(wide, "headers"),
         E("d", "topic")],
        [Q(wide[:31], 1), Q("m" * 36, 2), Q("q1"), Q("q2")],
        [B("a", "b", "x.#", "exchange"), B("b", "c", "y", "exchange"),
         B("c", "a", "back.key.with.some.length", "exchange"), B("a", wide[:31], "W" * 50),
         B(wide, wide[:31], arguments={"x-match": "any", "WWWW": "MMMM" * 10, "%%%": "@@@"}),
         B("c", "q1"), B("b", "q1", "WW"), B("d", "q1", "d1"), B("d", "q1", "d2"),
         B("a", "q2", "#"), B("d", "m" * 36, "ümlaut.ключ.Straße")])


@pytest.mark.parametrize("include_default", [False, True], ids=["plain", "with-default"])
def test_adversarial_picture_is_legible(page, report, include_default):
    name = "adversarial" + ("-with-default" if include_default else "")
    found = measure(page, topology_svg(adversarial(), include_default=include_default), name)
    report[name] = summary(found)
    assert check_layout(found) == []


@pytest.mark.parametrize("include_default", [False, True], ids=["plain", "with-default"])
def test_crowded_vhost_is_legible(page, report, include_default):
    svg = topology_svg(crowded(), include_default=include_default)
    name = "all-labs" + ("-with-default" if include_default else "")
    found = measure(page, svg, name)
    report[name] = summary(found)
    assert check_layout(found) == []
    queues = {q.name for q in crowded().queues}
    assert queues <= {t["text"] for t in found["texts"]} | {
        name for name in queues if len(name) > 32}  # long names are shortened, not lost
