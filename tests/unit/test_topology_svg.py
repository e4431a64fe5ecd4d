import xml.etree.ElementTree as ET

import pytest

from mqkit.admin import BindingInfo, ExchangeInfo, QueueInfo, Topology
from mqkit.widgets.topology import binding_label, topology_svg

SVG = "{http://www.w3.org/2000/svg}"


def blog_topology() -> Topology:
    return Topology(
        exchanges=[ExchangeInfo("blog", "topic"), ExchangeInfo("logistics", "headers"),
                   ExchangeInfo("mirror", "fanout")],
        queues=[QueueInfo("sports", 3), QueueInfo("tech", 0), QueueInfo("berlin<&>", None),
                QueueInfo("orphan", 1, durable=False, exclusive=True)],
        bindings=[
            BindingInfo("blog", "sports", routing_key="sports.#"),
            BindingInfo("blog", "tech", routing_key="#.technology"),
            BindingInfo("blog", "tech", routing_key="tech.*"),
            BindingInfo("blog", "mirror", destination_type="exchange", routing_key="#"),
            BindingInfo("mirror", "sports"),
            BindingInfo("logistics", "berlin<&>",
                        arguments={"x-match": "all", "destination": "Berlin"}),
            BindingInfo("", "tech", routing_key="tech"),  # default exchange: not shown
        ],
        vhost="/")


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the document is well-formed XML


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def test_every_queue_is_drawn_with_its_count():
    root = parse(topology_svg(blog_topology()))
    queues = {g.get("data-queue"): g for g in groups(root, "queue")}
    assert set(queues) == {"sports", "tech", "berlin<&>", "orphan"}
    assert queues["sports"].get("data-messages") == "3"
    assert "3 messages" in texts(queues["sports"])
    assert "1 message" in texts(queues["orphan"])
    assert "0 messages" in texts(queues["tech"])
    assert "? messages" in texts(queues["berlin<&>"])


def test_exchanges_show_their_type():
    root = parse(topology_svg(blog_topology()))
    exchanges = {g.get("data-exchange"): texts(g) for g in groups(root, "exchange")}
    assert exchanges["blog"] == ["blog", "topic exchange"]
    assert exchanges["logistics"][1] == "headers exchange"


def test_bindings_are_labelled_and_grouped_per_pair():
    root = parse(topology_svg(blog_topology()))
    arrows = {(g.get("data-source"), g.get("data-destination")): texts(g)
              for g in groups(root, "binding")}
    assert arrows[("blog", "sports")] == ["sports.#"]
    assert arrows[("blog", "tech")] == ["#.technology | tech.*"]
    assert arrows[("blog", "mirror")] == ["#"]
    assert arrows[("mirror", "sports")] == []  # fanout: no key to show
    assert arrows[("logistics", "berlin<&>")] == ["destination=Berlin, x-match=all"]
    assert ("", "tech") not in arrows


def test_exchange_bound_to_exchange_sits_one_column_right():
    root = parse(topology_svg(blog_topology()))
    x = {g.get("data-exchange") or g.get("data-queue"): float(g.find(f"{SVG}rect").get("x"))
         for g in groups(root, "exchange") + groups(root, "queue")}
    assert x["blog"] == x["logistics"] < x["mirror"] < x["sports"] == x["tech"]


def test_names_are_escaped_and_long_names_shortened():
    long_name = "q" * 80
    topology = Topology([], [QueueInfo(long_name, 1), QueueInfo("<script>", 2)], [])
    svg = topology_svg(topology)
    assert "<script>" not in svg
    root = parse(svg)
    shown = [texts(g)[0] for g in groups(root, "queue")]
    assert "<script>" in shown
    assert any(name.endswith("…") and len(name) < 40 for name in shown)
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert any(long_name in (t or "") for t in titles)


def test_empty_topology_says_so():
    root = parse(topology_svg(Topology([], [], [], vhost="student-1")))
    assert "no exchanges or queues" in texts(root)
    assert "vhost student-1" in texts(root)


def test_binding_cycle_does_not_hang():
    topology = Topology([ExchangeInfo("a", "fanout"), ExchangeInfo("b", "fanout")], [],
                        [BindingInfo("a", "b", "exchange"), BindingInfo("b", "a", "exchange")])
    root = parse(topology_svg(topology))
    assert len(groups(root, "binding")) == 2


@pytest.mark.parametrize(("binding", "label"), [
    (BindingInfo("x", "q", routing_key="AAPL"), "AAPL"),
    (BindingInfo("x", "q", arguments={"x-match": "any", "a": 1}), "a=1, x-match=any"),
    (BindingInfo("x", "q"), ""),
])
def test_binding_label(binding, label):
    assert binding_label(binding) == label
