"""The MQTT widgets' models and views, driven without a broker or a browser."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from mqkit.exceptions import ConfigError
from mqkit.widgets import (
    MQTTInbox,
    MQTTInboxModel,
    MQTTMessage,
    MQTTPublishResult,
    TopicFilterExplainer,
    TopicFilterModel,
)
from mqkit.widgets.mqtt_inbox import format_mqtt_message

URL = "mqtt://student:secret@127.0.0.1:1"  # never connected to: start=False


def paho_message(topic: str, payload: bytes, qos: int = 1,
                 retain: bool = False) -> mqtt.MQTTMessage:
    """A real paho message object, as paho's thread hands it to on_message."""
    message = mqtt.MQTTMessage(mid=1, topic=topic.encode())
    message.payload, message.qos, message.retain = payload, qos, retain
    return message


def test_explainer_model_says_which_filters_match_and_why() -> None:
    model = TopicFilterModel(["sport/+", "sport/#", "+/tennis/#", "sport/tennis", ""],
                             "sport/tennis/player1")
    verdicts = model.explain()
    assert [v.topic_filter for v in verdicts] == ["sport/+", "sport/#", "+/tennis/#",
                                                  "sport/tennis"]
    assert [v.matched for v in verdicts] == [False, True, True, False]
    assert "only `#` matches more levels" in verdicts[0].reason
    assert "`#` matches `tennis/player1`" in verdicts[1].reason
    assert model.matching() == ["sport/#", "+/tennis/#"]


def test_explainer_model_reports_invalid_filters_and_topics() -> None:
    verdict, = TopicFilterModel(["sport/ten#"], "sport/tennis").explain()
    assert not verdict.is_valid
    assert not verdict.matched
    assert "`#` must be a whole level" in verdict.reason
    verdict, = TopicFilterModel(["sport/#"], "sport/+").explain()
    assert not verdict.is_valid
    assert "wildcards are only for subscriptions" in verdict.reason
    assert TopicFilterModel(["#"], "$SYS/broker/uptime").lines() == [
        "✘ no match '#': a filter starting with `#` does not match topics starting with `$` "
        "(such as `$SYS/...`)"]


def test_explainer_view_follows_what_is_typed() -> None:
    view = TopicFilterExplainer(["home/+/temperature"], "home/kitchen/temperature")
    assert "✔ match" in view.result.value
    view.topic.value = "home/kitchen/fridge/temperature"
    assert "✘ no match" in view.result.value
    assert "✔" not in view.result.value
    view.filters.value = "home/#\nhome/+/temperature"
    assert view.model.matching() == ["home/#"]
    assert view.result.value.count("\n") == 1  # one line per filter
    view.close()


def test_publish_result_reads_as_a_sentence() -> None:
    assert str(MQTTPublishResult(True, "a/b", 2, True, 7, True)) == (
        "published to 'a/b' (QoS 2, retained) (acknowledged by the broker: PUBREC, PUBREL, "
        "PUBCOMP)")
    assert str(MQTTPublishResult(True, "a/b", 0)) == (
        "published to 'a/b' (QoS 0) (sent, QoS 0 has no acknowledgement)")
    assert str(MQTTPublishResult(False, "a/b", 1, detail="no acknowledgement")) == (
        "NOT PUBLISHED to 'a/b' (QoS 1): no acknowledgement")


@pytest.mark.parametrize("filters", [[], ["a/#/b"], ["a+"], [("a/b", 3)], ""])
def test_inbox_refuses_bad_filters_and_qos(filters) -> None:
    with pytest.raises(ConfigError):
        MQTTInboxModel(filters, URL)


def test_inbox_model_keeps_the_last_n_and_counts_all() -> None:
    model = MQTTInboxModel(["sensors/+/temperature", ("alerts/#", 2)], URL, limit=3)
    assert model.filters == [("sensors/+/temperature", 1), ("alerts/#", 2)]
    assert model.key == "mqtt-inbox:sensors/+/temperature,alerts/#"
    for number in range(10):
        model._on_message(None, None, paho_message("alerts/fire", f"m{number}".encode(), 2))
    assert model.count == 10
    assert [m.text for m in model.received] == ["m7", "m8", "m9"]
    assert model.received[-1].seq == 10
    assert model.received[-1].filters == ("alerts/#",)
    assert model.wait_for(10, timeout=0)
    assert not model.wait_for(11, timeout=0.01)
    model.clear()
    assert model.count == 0
    assert not model.received


def test_inbox_view_renders_messages_escaped_and_counts() -> None:
    view = MQTTInbox("home/#", URL, limit=2, start=False)
    model = view.model
    for payload in (b"one", b"<b>two</b>", b"three"):
        model._on_message(None, None, paho_message("home/door", payload, 1, retain=True))
    view.render()
    assert view.counter.value == "3 received, showing the last 2 (stopped)"
    assert "&lt;b&gt;two&lt;/b&gt;" in view.messages.value
    assert "#3 home/door (QoS 1 retained): three" in view.messages.value
    assert view.toggle.description == "Start"
    view.close()


def test_format_shows_flags_and_truncates() -> None:
    message = MQTTMessage(4, "a/b", b"x" * 300, qos=1, dup=True)
    line = format_mqtt_message(message, width=10)
    assert line == "#4 a/b (QoS 1 dup): xxxxxxxxx…"
