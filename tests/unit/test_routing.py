"""mqkit.routing: the awkward cases and the reasons, as tables (checked against real brokers
by tests/integration/test_routing_vs_rabbitmq.py and test_topic_filters_vs_mosquitto.py)."""

from __future__ import annotations

import datetime
import decimal

import pytest

from mqkit.exceptions import ConfigError
from mqkit.routing import (
    Binding,
    Message,
    destinations,
    is_valid_topic_filter,
    route,
    split_topic_key,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)


def one(exchange_type, binding, routing_key="", headers=None):
    return route(exchange_type, [binding], routing_key, headers)[0]


TOPIC = [
    # binding key, routing key, matched, words in the reason
    ("sports.*", "sports", False, "`*` needs exactly one word; `sports` has none after it"),
    ("sports.*", "sports.football", True, "`*` matches `football`"),
    ("sports.#", "sports", True, "`#` matches zero words here"),
    ("sports.#", "sports.football.uk", True, "`#` matches `football.uk`"),
    ("#.technology", "blog.technology", True, "`#` matches `blog`"),
    ("#.technology", "technology.blog", False, "end with `technology`; it ends with `blog`"),
    ("#", "", True, "`#` matches zero or more words"),
    ("#", "a..b", True, "`#` matches zero or more words"),
    ("#.#", "a", True, "`#` matches zero or more words"),
    ("*", "", False, "the routing key is empty (no words)"),
    ("", "", True, "the empty binding key matches the empty routing key"),
    ("", "a", False, "the empty binding key matches only the empty routing key"),
    ("*", ".", False, "the routing key goes on with an empty word after an empty word"),
    ("*.*", ".", True, "`*` matches an empty word"),
    ("a..b", "a..b", True, "equals the routing key word for word"),
    ("a.*.b", "a..b", True, "`*` matches an empty word"),
    ("a.b", "a..b", False, "word 2: the binding wants `b`, the routing key has an empty word"),
    (".a", "a", False, "word 1: the binding wants an empty word, the routing key has `a`"),
    ("a.", "a", False, "the binding wants an empty word after `a`; the routing key ends there"),
    ("a.#.b", "a.b", True, "`#` matches zero words here"),
    ("a.#.b", "a.x.y.b", True, "`#` matches `x.y`"),
    ("a.#.b", "a.x.c", False, "end with `b`; it ends with `c`"),
    ("#.a.b", "a", False, "only 1 word(s)"),
    ("*", "*", True, "`*` matches `*`"),
    ("a.*", "a.*", True, "`*` matches `*`"),
    ("#", "#", True, "`#` matches zero or more words"),
    ("a.#", "a.#", True, "`#` matches `#`"),
    ("a*", "ab", False, "word 1: the binding wants `a*`"),
    ("a", "a.b", False, "only `#` matches more words"),
    ("a.b.c", "a.b", False, "the binding wants `c` after `a.b`"),
    ("a.b", "a.c", False, "word 2: the binding wants `b`, the routing key has `c`"),
]


@pytest.mark.parametrize(("binding_key", "routing_key", "matched", "reason"), TOPIC)
def test_topic(binding_key, routing_key, matched, reason):
    match = one("topic", Binding("q", binding_key), routing_key)
    assert match.matched is matched
    assert bool(match) is matched
    assert reason in match.reason


def test_split_topic_key_keeps_empty_words():
    assert split_topic_key("") == []
    assert split_topic_key(".") == ["", ""]
    assert split_topic_key("a..b") == ["a", "", "b"]
    assert split_topic_key(".a.") == ["", "a", ""]


@pytest.mark.parametrize(("binding_key", "routing_key", "matched", "reason"), [
    ("a", "a", True, "equals the routing key"),
    ("", "", True, "equals the routing key"),
    ("A", "a", False, "(case matters)"),
    ("*", "a", False, "direct needs exact equality"),
    ("a.#", "a.b", False, "direct needs exact equality"),
])
def test_direct(binding_key, routing_key, matched, reason):
    match = one("direct", Binding("q", binding_key), routing_key)
    assert match.matched is matched
    assert reason in match.reason


def test_fanout_ignores_the_routing_key():
    matches = route("fanout", [Binding("a", "x"), Binding("b", "#")], "anything")
    assert all(matches)
    assert "fanout ignores the routing key" in matches[0].reason


HEADERS = [
    # binding arguments, message headers, matched, words in the reason
    ({"x-match": "all", "destination": "Paris"}, {"destination": "Berlin"}, False,
     "x-match=all: `destination` is `Berlin`, the binding wants `Paris`"),
    ({"x-match": "all", "destination": "Paris", "delivery_method": "truck"},
     {"destination": "Paris", "delivery_method": "truck", "extra": 1}, True,
     "`delivery_method` is `truck` and `destination` is `Paris`"),
    ({"x-match": "all", "destination": "Paris", "delivery_method": "truck"},
     {"destination": "Paris"}, False, "the message has no `delivery_method` header"),
    ({"x-match": "any", "destination": "Paris", "delivery_method": "truck"},
     {"delivery_method": "truck"}, True, "x-match=any: `delivery_method` is `truck`"),
    ({"x-match": "any", "destination": "Paris"}, {"destination": "Rome"}, False,
     "no header matches"),
    ({"destination": "Paris"}, {"destination": "Paris"}, True, "x-match=all (the default)"),
    ({"count": 1}, {"count": "1"}, False, "a string vs an integer: RabbitMQ compares typed"),
    ({"count": 1}, {"count": True}, False, "the binding wants `1`"),
    ({"flag": True}, {"flag": 1}, False, "the binding wants `True`"),
    ({"count": 1}, {"count": 1}, True, "`count` is `1`"),
    ({"big": 2**40}, {"big": 2**40}, True, "`big` is"),
    ({"count": 1}, {"count": decimal.Decimal(1)}, False, "the binding wants `1`"),
    ({"price": decimal.Decimal("1.50")}, {"price": decimal.Decimal("1.5")}, True, "`price`"),
    ({"name": "Paris"}, {"name": b"Paris"}, True, "`name` is `b'Paris'`"),
    ({"at": 0}, {"at": datetime.datetime(1970, 1, 1)}, True, "`at` is"),
    # RabbitMQ 4.x: a message's timestamp in milliseconds, a binding's in seconds
    ({"at": 1000}, {"at": datetime.datetime(1970, 1, 1, 0, 0, 1)}, True, "`at` is"),
    ({"at": datetime.datetime(1970, 1, 1, 0, 0, 1)}, {"at": datetime.datetime(1970, 1, 1, 0, 0, 1)},
     False, "in milliseconds"),
    ({"at": datetime.datetime(1970, 1, 1, 0, 0, 1)}, {"at": 1}, True, "`at` is"),
    ({"a": None}, {"a": "anything"}, True, "a void binding value asks only for presence"),
    ({"a": None}, {}, False, "the message has no `a` header"),
    ({"a": "x"}, {"a": None}, False, "the binding wants `x`"),
    ({"x-match": "all"}, None, True, "with no headers to compare matches every message"),
    ({"x-match": "any"}, {"a": 1}, False, "with no headers to compare matches nothing"),
    ({"x-match": "all", "x-tag": "v"}, {}, True, "`x-tag` ignored"),
    ({"x-match": "any", "x-tag": "v"}, {"x-tag": "v"}, False, "`x-tag` ignored"),
    ({"x-match": "all", "X-tag": "v"}, {}, False, "no `X-tag` header"),
    ({"x-match": "all-with-x", "x-tag": "v"}, {"x-tag": "v"}, True, "x-match=all-with-x"),
    ({"x-match": "all-with-x", "x-tag": "v"}, {}, False, "no `x-tag` header"),
    ({"x-match": "any-with-x", "x-tag": "v", "a": 1}, {"a": 1}, True, "`a` is `1`"),
    ({"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False, "matches nothing"),
    ({"a": {"b": 1, "c": 2}}, {"a": {"c": 2, "b": 1}}, False, "the binding wants"),
    ({"a": [1, "x"]}, {"a": [1, "x"]}, True, "`a` is"),
]


@pytest.mark.parametrize(("arguments", "headers", "matched", "reason"), HEADERS)
def test_headers(arguments, headers, matched, reason):
    match = one("headers", Binding("q", "ignored", arguments), "also ignored", headers)
    assert match.matched is matched
    assert reason in match.reason


@pytest.mark.parametrize("x_match", ["ALL", "bogus", "", 1, b"all"])
def test_invalid_x_match_is_refused(x_match):
    with pytest.raises(ConfigError, match="PRECONDITION_FAILED"):
        one("headers", Binding("q", "", {"x-match": x_match}))


def test_a_key_with_three_hashes_is_refused_unless_a_broker_took_it():
    bindings = [Binding("many", "a.#.#.#"), Binding("one", "b.*")]
    with pytest.raises(ConfigError, match=r"uses 3 '#' wildcards: RabbitMQ 4\.3"):
        route("topic", bindings, "a.x")
    many, one = route("topic", bindings, "a.x", accepted=True)
    assert (many.matched, one.matched) == (True, False)
    assert many.reason.endswith("(this broker took the key; RabbitMQ 4.3 refuses more than "
                                "2 '#' in one)")
    assert "RabbitMQ 4.3" not in one.reason
    assert not route("topic", bindings, "b.x.y", accepted=True)[0].matched


def test_cc_and_bcc_add_routing_keys():
    bindings = [Binding("b", "b"), Binding("c", "c.*"), Binding("d", "d")]
    matches = route("topic", bindings, "a", {"CC": ["b"], "BCC": ["c.x", 7]})
    assert [m.matched for m in matches] == [True, True, False]
    assert "via the CC/BCC routing key `b`" in matches[0].reason


@pytest.mark.parametrize("value", ["b", None, 7, {"a": "b"}])
def test_cc_must_be_an_array(value):
    with pytest.raises(ConfigError, match="CC"):
        route("fanout", [Binding("q")], "", {"CC": value})


def test_message_and_destinations():
    bindings = [Binding("q1", "a"), Binding("q1", "#"), Binding("q2", "b"),
                Binding("x", "#", destination_type="exchange")]
    matches = route("topic", bindings, Message("a"))
    assert destinations(matches) == ["q1", "x"]


def test_unknown_exchange_type():
    with pytest.raises(ConfigError, match="x-consistent-hash"):
        route("x-consistent-hash", [], "")


MQTT = [
    # filter, topic, matched, words in the reason
    ("sport/+", "sport/tennis", True, "`+` matches `tennis`"),
    ("sport/+", "sport", False, "`+` needs exactly one level; `sport` has none after it"),
    ("sport/+", "sport/tennis/p1", False, "only `#` matches more levels"),
    ("sport/#", "sport", True, "it also matches the parent `sport`"),
    ("sport/#", "sport/tennis/p1", True, "`#` matches `tennis/p1`"),
    ("#", "a/b", True, "`#` matches `a/b`"),
    ("#", "/", True, "`#` matches `/`"),
    ("#", "$SYS/broker", False, "topics starting with `$`"),
    ("+/broker", "$SYS/broker", False, "topics starting with `$`"),
    ("$SYS/#", "$SYS/broker", True, "`#` matches `broker`"),
    ("a/$b", "a/$b", True, "the filter equals the topic"),
    ("a/+", "a/$b", True, "`+` matches `$b`"),
    ("+", "/a", False, "the topic goes on with `a` after an empty level"),
    ("+/+", "/a", True, "`+` matches an empty level"),
    ("/+", "/a", True, "`+` matches `a`"),
    ("a/+", "a/", True, "`+` matches an empty level"),
    ("a/#", "a/", True, "`#` matches an empty level"),
    ("a//b", "a/b", False, "level 2: the filter wants an empty level, the topic has `b`"),
    ("a/b", "a/b/", False, "goes on with an empty level"),
    ("A", "a", False, "level 1: the filter wants `A`"),
    ("$share/g/a/+", "a/b", True, "shared subscription (group `g`), filter `a/+`"),
]


@pytest.mark.parametrize(("topic_filter", "topic", "matched", "reason"), MQTT)
def test_topic_filters(topic_filter, topic, matched, reason):
    match = topic_matches(topic_filter, topic)
    assert match.matched is matched
    assert reason in match.reason


@pytest.mark.parametrize(("topic_filter", "error"), [
    ("a/#/b", "it must be the last level"),
    ("#/", "it must be the last level"),
    ("a+", "`+` must be a whole level"),
    ("a/+b/c", "`+` must be a whole level"),
    ("a/b#", "`#` must be a whole level"),
    ("", "it is empty"),
    ("a\x00b", "U+0000"),
    ("a" * 65536, "longer than 65535 bytes"),
    ("$share//a", "shared subscription"),
    ("$share/g", "shared subscription"),
    ("$share/g+/a", "shared subscription"),
])
def test_invalid_filters(topic_filter, error):
    with pytest.raises(ConfigError, match=error.replace("+", r"\+")) as info:
        validate_topic_filter(topic_filter)
    assert "Hint:" in str(info.value)
    assert not is_valid_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", ["#", "+", "/", "//", "+/+/#", "a/+/b/#", "$SYS/#",
                                          "$share/g/#"])
def test_valid_filters(topic_filter):
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\x00"])
def test_invalid_topics(topic):
    with pytest.raises(ConfigError):
        validate_topic_name(topic)
    with pytest.raises(ConfigError):
        topic_matches("#", topic)
