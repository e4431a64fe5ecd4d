"""RoutingExplainer's model and view, and the predict-then-publish report, without a broker."""

from __future__ import annotations

import pytest

from mqkit.exceptions import ConfigError
from mqkit.grading.predict import PredictionReport, PredictionRow
from mqkit.routing import Binding
from mqkit.widgets import RoutingExplainer, RoutingExplainerModel

BLOG = [Binding("lab05.sports", "sports.#"), Binding("lab05.tech", "#.technology"),
        Binding("lab05.one-word", "*")]


def test_topic_lines_judge_every_binding_with_the_model_reason() -> None:
    model = RoutingExplainerModel("topic", BLOG, exchange="lab05.blog")
    assert model.lines("sports") == [
        "lab05.blog (topic), routing key 'sports':",
        "✔ lab05.sports  binding key 'sports.#'  "
        "`#` matches zero words here (it matches zero or more)",
        "✘ lab05.tech  binding key '#.technology'  after `#` the binding wants the routing key "
        "to end with `technology`; it ends with `sports`",
        "✔ lab05.one-word  binding key '*'  `*` matches `sports`",
        "→ delivered to: lab05.sports, lab05.one-word",
    ]


def test_unroutable_message_says_so() -> None:
    model = RoutingExplainerModel("direct", [Binding("lab04.AAPL", "AAPL")])
    lines = model.lines("aapl")
    assert lines[1].startswith("✘ lab04.AAPL  binding key 'AAPL'  ")
    assert "(case matters)" in lines[1]
    assert lines[-1].startswith("→ unroutable: no binding matches")


def test_a_queue_bound_twice_is_delivered_once() -> None:
    model = RoutingExplainerModel("direct", [Binding("p", "AAPL"), Binding("p", "MSFT"),
                                             Binding("q", "AAPL")])
    assert [m.matched for m in model.explain("AAPL")] == [True, False, True]
    assert model.lines("AAPL")[-1] == "→ delivered to: p, q"


def test_headers_and_fanout_and_exchange_destinations() -> None:
    parcels = Binding("berlin", arguments={"x-match": "all", "destination": "Berlin",
                                           "delivery_method": "express"})
    model = RoutingExplainerModel("headers", [parcels])
    text = model.text("ignored", {"destination": "Berlin", "delivery_method": "standard"})
    assert "headers {x-match='all', delivery_method='express', destination='Berlin'}" in text
    assert "`delivery_method` is `standard`, the binding wants `express`" in text
    assert text.startswith("exchange (headers), routing key 'ignored', headers {")
    fanout = RoutingExplainerModel("fanout", [Binding("archive", destination_type="exchange")])
    assert fanout.lines("x")[1] == ("✔ exchange archive  fanout binding  fanout ignores the "
                                    "routing key: every bound queue gets a copy")


def test_no_bindings_and_unknown_type() -> None:
    assert RoutingExplainerModel("topic").lines("a") == [
        "exchange (topic), routing key 'a':", "(no bindings)",
        "→ unroutable: no binding matches (the broker drops the message, or returns it when "
        "published with mandatory=True)"]
    with pytest.raises(ConfigError):
        RoutingExplainerModel("x-consistent-hash")
    with pytest.raises(ConfigError, match="no broker"):
        RoutingExplainerModel("direct").refresh()


def test_html_escapes_names_and_marks_matches() -> None:
    model = RoutingExplainerModel("direct", [Binding("<q>", "k&k")])
    page = model.html("k&k")
    assert "<code>&lt;q&gt;</code>" in page
    assert "✔ matched" in page
    assert "<q>" not in page
    assert "✘ no" in model.html("other")


def test_widget_redraws_when_the_routing_key_or_headers_change() -> None:
    view = RoutingExplainer(exchange_type="topic", bindings=BLOG, routing_key="sports")
    assert view.refresh_button.disabled  # no broker to re-read
    assert "delivered to: lab05.sports, lab05.one-word" in view.table.value
    view.routing_key.value = "news.technology"
    assert "delivered to: lab05.tech" in view.table.value
    headers = RoutingExplainer(exchange_type="headers", bindings=[
        Binding("b", arguments={"x-match": "any", "a": "1"})])
    assert "unroutable" in headers.table.value
    headers.headers.value = "a=1"
    assert "delivered to: b" in headers.table.value
    headers.headers.value = "not a header line"
    assert "ConfigError" in headers.table.value  # shown, not raised


def test_prediction_report_marks_each_cell() -> None:
    report = PredictionReport("lab04.stocks", ("lab04.AAPL", "lab04.portfolio"), (
        PredictionRow("AAPL", frozenset({"lab04.AAPL"}),
                      frozenset({"lab04.AAPL", "lab04.portfolio"})),
        PredictionRow("GOOG", frozenset(), frozenset(), is_unroutable=True),
    ))
    assert report.lines() == [
        "prediction vs broker, exchange 'lab04.stocks'",
        "each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong",
        "message  lab04.AAPL        lab04.portfolio",
        "AAPL     yes · you: yes ✔  yes · you: no ✘",
        "GOOG     no · you: no ✔    no · you: no ✔  (returned: no queue matched)",
        "✘ 'AAPL': the broker delivered it to lab04.AAPL, lab04.portfolio; "
        "you predicted lab04.AAPL",
        "1 of 2 messages predicted right.",
    ]
    assert repr(report) == str(report)
    assert not report.is_all_right
    assert report.right == 1


def test_prediction_report_error_line() -> None:
    report = PredictionReport("", error="broker down")
    assert str(report) == "⚠ could not publish to exchange '' (the default exchange): broker down"
    assert not report.is_all_right
