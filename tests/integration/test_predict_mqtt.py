"""Lab 10's wildcard exercise on the real Mosquitto: the predict-then-publish table and the
``10.wildcard-filters`` check.

What the table and the check report is what Mosquitto delivered: the ``$SYS`` case below is
one where mqkit's matching model says "match" and the broker delivers nothing.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from mqkit import clients
from mqkit.grading import get_check
from mqkit.grading.mqtt import deliveries
from mqkit.grading.predict import PredictionRow
from mqkit.grading.predict_mqtt import MQTTPredictionReport, predict_then_publish

pytestmark = pytest.mark.integration

SOLUTION = ["lab10/house/+/+/temperature", "lab10/house/attic/temperature",
            "/lab10/house/+/+/temperature"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publisher(brokers):
    client = clients.mqtt_connect(brokers, client_id=unique("test-predict-pub"))
    yield client
    client.disconnect()
    client.loop_stop()


def retain(client, topic: str, payload: str) -> None:
    info = client.publish(topic, payload, qos=1, retain=True)
    info.wait_for_publish(5)
    assert info.is_published()


def retained_messages(brokers, topic_filter: str) -> list:
    """The retained messages a new subscription to ``topic_filter`` receives at once."""
    client = clients.mqtt_client(brokers, client_id=unique("test-predict-look"))
    got, subscribed = [], threading.Event()
    client.on_message = lambda _c, _u, message: got.append(message)
    client.on_subscribe = lambda *_args: subscribed.set()
    clients.mqtt_connect(client=client)
    try:
        client.subscribe(topic_filter, 1)
        assert subscribed.wait(5)
        threading.Event().wait(0.5)
    finally:
        client.disconnect()
        client.loop_stop()
    return [m for m in got if m.retain]


# -- what the broker delivers --------------------------------------------------------------


def test_deliveries_show_the_corners_of_the_rules(brokers):
    root = unique("t")
    filters = ["#", f"+/{root}/a", f"{root}/+/a", f"${root}/#", f"{root}/#"]
    topics = [f"{root}//a", f"/{root}/a", f"${root}/a", root, f"{root}/x/y/a"]
    got = deliveries(brokers, filters, topics)
    by_filter = {f: sorted(topics[i] for i in indexes) for f, indexes in zip(filters, got,
                                                                               strict=True)}
    # '#' gets everything this test published except the '$' topic.
    assert by_filter["#"] == sorted([f"{root}//a", f"/{root}/a", root, f"{root}/x/y/a"])
    assert by_filter[f"+/{root}/a"] == [f"/{root}/a"]              # a leading '/': empty level
    assert by_filter[f"{root}/+/a"] == [f"{root}//a"]              # '+' matches an empty level
    assert by_filter[f"${root}/#"] == [f"${root}/a"]               # '$' topics: name level 1
    assert by_filter[f"{root}/#"] == sorted([f"{root}//a", root, f"{root}/x/y/a"])  # parent too


def test_deliveries_ignore_retained_messages_and_other_traffic(brokers, publisher):
    root = unique("t")
    retain(publisher, f"{root}/old", "left by someone else")
    try:
        got = deliveries(brokers, [f"{root}/#"], [f"{root}/new"])
        assert got == [{0}]
    finally:
        retain(publisher, f"{root}/old", "")


# -- predict, then publish -----------------------------------------------------------------

SUBSCRIPTIONS = ["sensors/+/temp", "sensors/#", "+/+/temp", "#", "$lab10/#"]
RIGHT = {
    "sensors/kitchen/temp": {"sensors/+/temp", "sensors/#", "+/+/temp", "#"},
    "sensors/kitchen/fridge/temp": {"sensors/#", "#"},
    "sensors//temp": {"sensors/+/temp", "sensors/#", "+/+/temp", "#"},
    "/sensors/temp": {"+/+/temp", "#"},
    "sensors": {"sensors/#", "#"},
    "$lab10/kitchen/temp": {"$lab10/#"},
}


def test_a_right_prediction_is_all_right_and_leaves_nothing_retained(brokers):
    report = predict_then_publish(brokers, SUBSCRIPTIONS, RIGHT)
    assert report.is_all_right, report
    text = str(report)
    assert text.endswith("6 of 6 topics predicted right.")
    assert "sensors//temp                yes · you: yes ✔  yes · you: yes ✔" in text
    for topic in RIGHT:
        assert retained_messages(brokers, topic) == [], topic


def test_a_wrong_prediction_is_marked_where_it_is_wrong(brokers):
    wrong = dict(RIGHT, **{"/sensors/temp": {"sensors/#", "#"},  # the leading '/' trap
                           "$lab10/kitchen/temp": {"#", "$lab10/#"}})  # the '$' trap
    report = predict_then_publish(brokers, SUBSCRIPTIONS, wrong)
    assert not report.is_all_right
    assert report.right == 4
    lines = report.lines()
    assert "✘ '/sensors/temp': Mosquitto delivered it to +/+/temp, #; you predicted " \
           "sensors/#, #" in lines
    assert "✘ '$lab10/kitchen/temp': Mosquitto delivered it to $lab10/#; you predicted " \
           "#, $lab10/#" in lines
    row = next(r for r in report.rows if r.label == "/sensors/temp")
    assert report.cell(row, "sensors/#") == "no · you: yes ✘"
    assert report.cell(row, "+/+/temp") == "yes · you: no ✘"


def test_the_table_comes_from_the_broker_not_the_model(brokers):
    # The model says '$SYS/#' matches '$SYS/...'; Mosquitto drops what clients publish there.
    topic = f"$SYS/mqkit-test/{uuid.uuid4().hex[:8]}"
    report = predict_then_publish(brokers, ["$SYS/#", "#"], {topic: {"$SYS/#"}})
    assert report.rows[0].received == frozenset()
    assert not report.is_all_right
    assert any("under $SYS" in note for note in report.notes)


def test_an_empty_prediction_and_unknown_filters(brokers):
    report = predict_then_publish(brokers, ["a-test/+"], {"a-test/b": "no-such/filter"},
                                  topics=["a-test/b", "a-test/c/d"])
    assert [r.label for r in report.rows] == ["a-test/b", "a-test/c/d"]
    assert report.right == 1  # 'a-test/c/d' reaches nobody, as the (missing) row says
    assert any("nobody subscribed with 'no-such/filter'" in note for note in report.notes)


def test_problems_become_the_report_and_never_raise(brokers):
    report = predict_then_publish(brokers, ["a/#/b"], {"a/b": set()})
    assert report.error.startswith("Invalid topic filter 'a/#/b'")
    assert str(report).startswith("⚠ could not subscribe and publish on Mosquitto:")
    assert "topic 'a/+'" in predict_then_publish(brokers, ["a/+"], {"a/+": set()}).error
    assert predict_then_publish(None, ["a"], {"a": set()}).error
    with pytest.raises(ValueError, match="no brokers given"):
        predict_then_publish(None, ["a"], {"a": set()}, raise_errors=True)


def test_report_layout_without_a_broker():
    report = MQTTPredictionReport(("a/+", "#"), (
        PredictionRow("a/b", frozenset({"a/+"}), frozenset({"a/+", "#"})),
        PredictionRow("$x", frozenset(), frozenset())))
    assert report.lines() == [
        "prediction vs Mosquitto: which subscriptions received each topic",
        "each cell: did the subscription get it? · what you predicted · ✔ right / ✘ wrong",
        "topic  a/+               #",
        "a/b    yes · you: yes ✔  yes · you: no ✘",
        "$x     no · you: no ✔    no · you: no ✔",
        "✘ 'a/b': Mosquitto delivered it to a/+, #; you predicted a/+",
        "1 of 2 topics predicted right.",
    ]


# -- the check: filters for the heating controller -----------------------------------------


@pytest.fixture
def config(brokers, publisher):
    """A configuration topic of this test (the check reads it), emptied afterwards."""
    topic = unique("lab10-test/config") + "/heating"
    yield topic
    retain(publisher, topic, "")


def run_check(brokers, config_topic: str):
    return get_check("10.wildcard-filters").run(brokers, config_topic=config_topic)


def test_the_solution_passes(brokers, publisher, config):
    retain(publisher, config, json.dumps(SOLUTION))
    result = run_check(brokers, config)
    assert result.is_passed, result
    assert "none of the 5 other readings" in result.message


def test_nothing_retained_or_no_filter_is_not_yet(brokers, publisher, config):
    assert "nothing is retained" in run_check(brokers, config).message
    retain(publisher, config, "[]")
    result = run_check(brokers, config)
    assert result.status.value == "failed"
    assert "lists no filter" in result.message
    retain(publisher, config, "lab10/house/+/+/temperature, and more")
    assert "not a JSON list" in run_check(brokers, config).message


def test_a_multi_level_wildcard_brings_too_much(brokers, publisher, config):
    retain(publisher, config, json.dumps(["lab10/house/#", "/lab10/house/#"]))
    result = run_check(brokers, config)
    assert result.status.value == "failed"
    assert "humidity" in result.message
    assert "which it must not" in result.message
    assert "did not receive" not in result.message


def test_forgetting_the_attic_and_the_leading_slash(brokers, publisher, config):
    retain(publisher, config, json.dumps(SOLUTION[:1]))
    result = run_check(brokers, config)
    assert result.status.value == "failed"
    assert "did not receive 'lab10/house/attic/temperature', " \
           "'/lab10/house/ground/hall/temperature'" in result.message


def test_listing_the_topics_of_the_text_is_not_enough(brokers, publisher, config):
    # Floors and rooms of the probes are new on every run: only wildcards pass.
    listed = ["lab10/house/ground/kitchen/temperature", "lab10/house/attic/temperature",
              "/lab10/house/ground/hall/temperature"]
    retain(publisher, config, json.dumps(listed))
    result = run_check(brokers, config)
    assert result.status.value == "failed"
    assert "did not receive 'lab10/house/floor-" in result.message


def test_an_invalid_filter_is_named(brokers, publisher, config):
    retain(publisher, config, json.dumps(["lab10/house/#/temperature"]))
    result = run_check(brokers, config)
    assert result.status.value == "failed"
    assert "'lab10/house/#/temperature'" in result.message


def test_the_first_hint_shows_no_code():
    hints = get_check("10.wildcard-filters").hints
    assert len(hints) == 3
    assert "lab10/" not in hints[0]
    assert "[" not in hints[0]
    assert "heating_filters" in hints[-1]
