import itertools
import xml.etree.ElementTree as ET

import pytest

from mqkit.admin import BindingInfo, ExchangeInfo, QueueInfo, Topology
from mqkit.widgets.topology import TopologyModel, binding_label, select_topology, topology_svg

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
    # x-match leads the headers, compactly; the whole binding is in the arrow's tooltip.
    assert arrows[("logistics", "berlin<&>")] == ["all: destination=Berlin"]
    assert "x-match=all, destination=Berlin" in binding_titles(root)[("logistics", "berlin<&>")]
    assert ("", "tech") not in arrows


def binding_titles(root: ET.Element) -> dict[tuple[str | None, str | None], str]:
    return {(g.get("data-source"), g.get("data-destination")): g.find(f"{SVG}title").text or ""
            for g in groups(root, "binding")}


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


def test_an_arrow_pointing_back_is_labelled_below_the_boxes():
    topology = Topology([ExchangeInfo("a", "topic"), ExchangeInfo("b", "topic")], [],
                        [BindingInfo("a", "b", "exchange", "up.#"),
                         BindingInfo("b", "a", "exchange", "back.#")])
    root = parse(topology_svg(topology))
    width, height = size(root)
    lowest_box = max(float(r.get("y")) + float(r.get("height")) for r in root.iter(f"{SVG}rect"))
    back = next(g for g in groups(root, "binding") if g.get("data-source") == "b")
    label = back.find(f"{SVG}text")
    assert label.text == "back.#"
    assert lowest_box < float(label.get("y")) < height
    assert 0 < float(label.get("x")) < width


@pytest.mark.parametrize(("binding", "label"), [
    (BindingInfo("x", "q", routing_key="AAPL"), "AAPL"),
    (BindingInfo("x", "q", arguments={"x-match": "any", "a": 1}), "a=1, x-match=any"),
    (BindingInfo("x", "q"), ""),
])
def test_binding_label(binding, label):
    assert binding_label(binding) == label


# -- legibility: filters, the default exchange, accessibility, wrapping, size -------------

def size(root: ET.Element) -> tuple[float, float]:
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {width:.0f} {height:.0f}"
    return width, height


def two_labs() -> Topology:
    return Topology(
        exchanges=[ExchangeInfo("lab05.blog", "topic"), ExchangeInfo("lab07.logistics", "headers")],
        queues=[QueueInfo("lab05.sports", 1), QueueInfo("lab07.berlin-depot", 2),
                QueueInfo("my_queue", 0)],
        bindings=[
            BindingInfo("lab05.blog", "lab05.sports", routing_key="sports.#"),
            BindingInfo("lab07.logistics", "lab07.berlin-depot",
                        arguments={"x-match": "all", "destination": "Berlin"}),
            BindingInfo("lab05.blog", "lab07.berlin-depot", routing_key="#"),  # across labs
        ])


def drawn(root: ET.Element) -> tuple[set, set, set]:
    return ({g.get("data-exchange") for g in groups(root, "exchange")},
            {g.get("data-queue") for g in groups(root, "queue")},
            {(g.get("data-source"), g.get("data-destination")) for g in groups(root, "binding")})


def test_prefix_keeps_only_its_own_names_and_the_bindings_between_them():
    exchanges, queues, bindings = drawn(parse(topology_svg(two_labs(), prefix="lab07.")))
    assert exchanges == {"lab07.logistics"}
    assert queues == {"lab07.berlin-depot"}
    assert bindings == {("lab07.logistics", "lab07.berlin-depot")}  # not lab05.blog's

    exchanges, queues, _ = drawn(parse(topology_svg(two_labs(), prefix=("lab05.", "my_"))))
    assert exchanges == {"lab05.blog"}
    assert queues == {"lab05.sports", "my_queue"}

    assert drawn(parse(topology_svg(two_labs(), prefix="lab99.")))[:2] == (set(), set())
    assert len(drawn(parse(topology_svg(two_labs())))[2]) == 3  # no prefix: everything


def test_select_topology_is_the_filter_the_picture_uses():
    selected = select_topology(two_labs(), prefix="lab05.", include_default=True)
    assert [e.name for e in selected.exchanges] == ["", "lab05.blog"]
    assert [q.name for q in selected.queues] == ["lab05.sports"]
    assert BindingInfo("", "lab05.sports", routing_key="lab05.sports") in selected.bindings
    assert select_topology(two_labs()).bindings == two_labs().bindings


def test_default_exchange_is_drawn_with_an_implicit_binding_to_each_queue():
    topology = Topology([], [QueueInfo("my_queue", 1), QueueInfo("lab03.live", 0)], [])
    assert drawn(parse(topology_svg(topology)))[0] == set()  # only when asked for
    root = parse(topology_svg(topology, include_default=True))
    exchanges = {g.get("data-exchange"): texts(g) for g in groups(root, "exchange")}
    assert exchanges == {"": ["(default)", "direct exchange"]}
    arrows = {(g.get("data-source"), g.get("data-destination")): texts(g)
              for g in groups(root, "binding")}
    assert arrows == {("", "my_queue"): ["my_queue"], ("", "lab03.live"): ["lab03.live"]}
    desc = root.find(f"{SVG}desc").text
    assert "The default exchange routes to queue my_queue with routing key my_queue" in desc

    # Kept whatever the prefix; a binding read from the broker is not drawn twice.
    fetched = Topology([ExchangeInfo("", "direct")], [QueueInfo("lab03.live", 0)],
                       [BindingInfo("", "lab03.live", routing_key="lab03.live")])
    _, queues, bindings = drawn(parse(topology_svg(fetched, prefix="lab03.",
                                                   include_default=True)))
    assert queues == {"lab03.live"}
    assert bindings == {("", "lab03.live")}
    root = parse(topology_svg(fetched, prefix="lab03.", include_default=True))
    assert len(groups(root, "binding")[0].findall(f"{SVG}text")) == 1


def test_model_passes_prefix_and_default_exchange_to_the_picture():
    model = TopologyModel(object(), prefix=["lab05."], include_default=True)
    model.fetch = two_labs  # the broker boundary
    exchanges, queues, _ = drawn(parse(model.svg()))
    assert exchanges == {"", "lab05.blog"}
    assert queues == {"lab05.sports"}


def test_svg_has_an_accessible_title_and_description():
    root = parse(topology_svg(two_labs(), prefix="lab07."))
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert list(root).index(title) == 0  # the first child: what a screen reader announces
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "Topology of vhost / (prefix lab07.)"
    assert desc.text.startswith("1 exchange, 1 queue, 1 binding.")
    assert ("Exchange lab07.logistics (headers) routes to queue lab07.berlin-depot when the "
            "headers match x-match=all, destination=Berlin.") in desc.text
    assert "Queue lab07.berlin-depot holds 2 messages." in desc.text
    assert "vhost / (prefix lab07.)" in texts(root)  # the visible heading says so too
    assert parse(topology_svg(two_labs(), title="Lab 7")).find(f"{SVG}title").text == "Lab 7"


def test_long_header_arguments_are_wrapped_one_per_line_with_the_full_text_in_a_title():
    long_value = "a-very-long-warehouse-name-" * 3
    topology = Topology(
        [ExchangeInfo("lab07.logistics", "headers")], [QueueInfo("lab07.express-desk", 0)],
        [BindingInfo("lab07.logistics", "lab07.express-desk", arguments={
            "x-match": "any", "delivery_method": "express", "priority": "high",
            "warehouse": long_value})])
    root = parse(topology_svg(topology))
    arrow = groups(root, "binding")[0]
    lines = texts(arrow)
    assert lines[:2] == ["any: delivery_method=express", "priority=high"]
    assert lines[2].startswith("warehouse=a-very")
    assert lines[2].endswith("…")
    assert all(len(line) <= 40 for line in lines)
    full = arrow.find(f"{SVG}title").text
    assert f"x-match=any, delivery_method=express, priority=high, warehouse={long_value}" in full
    # Each line its own row: one x (right-aligned at the queue), baselines a line apart.
    assert len({t.get("x") for t in arrow.iter(f"{SVG}text")}) == 1
    ys = [float(t.get("y")) for t in arrow.iter(f"{SVG}text")]
    assert all(b - a >= 14 for a, b in itertools.pairwise(ys))


def test_many_routing_keys_are_one_a_line():
    keys = ["sports.#", "#.technology", "*.review", "news.politics.#"]
    topology = Topology([ExchangeInfo("blog", "topic")], [QueueInfo("feed", 0)],
                        [BindingInfo("blog", "feed", routing_key=key) for key in keys])
    assert texts(groups(parse(topology_svg(topology)), "binding")[0]) == sorted(keys)


def test_canvas_grows_with_what_is_drawn():
    def picture(queues: int, key: str = "k") -> tuple[float, float]:
        topology = Topology([ExchangeInfo("x", "direct")],
                            [QueueInfo(f"q{n}", 0) for n in range(queues)],
                            [BindingInfo("x", f"q{n}", routing_key=key) for n in range(queues)])
        return size(parse(topology_svg(topology)))

    assert picture(12)[1] > picture(3)[1] + 8 * 44
    assert picture(3, key="W" * 30)[0] > picture(3)[0] + 150
    headers = Topology([ExchangeInfo("h", "headers")], [QueueInfo("q", 0)], [BindingInfo(
        "h", "q", arguments={"x-match": "all", **{f"header{n}": n for n in range(8)}})])
    root = parse(topology_svg(headers))
    assert size(root)[1] >= 8 * 15  # the box and its lane grew to hold eight lines
    rect = groups(root, "queue")[0].find(f"{SVG}rect")
    assert float(rect.get("height")) >= 8 * 15
    assert size(parse(topology_svg(Topology([], [], [], vhost="x" * 120))))[0] > 120 * 7


def test_labels_of_different_arrows_never_share_a_row():
    root = parse(topology_svg(blog_topology(), include_default=True))
    rows = [(float(t.get("x")), float(t.get("y"))) for g in groups(root, "binding")
            for t in g.iter(f"{SVG}text")]
    for (x1, y1), (x2, y2) in itertools.combinations(rows, 2):
        assert x1 != x2 or abs(y1 - y2) >= 15, (x1, y1, y2)
