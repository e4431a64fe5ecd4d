"""mqkit.routing agrees with the real RabbitMQ on generated bindings and messages.

Each generated case declares a fresh exchange, binds a pool of exclusive queues to it (one
queue per binding), publishes each message with publisher confirms and asks every queue with
``basic_get`` whether it got a copy. After a confirmed publish the routing is done, and a
``basic_get`` on the same channel is ordered after the delivery, so no waiting is needed.

``MQKIT_TEST_ROUTING_EXAMPLES`` scales the number of generated cases per test.
"""

from __future__ import annotations

import calendar
import datetime
import decimal
import os
import uuid
from collections import Counter
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mqkit.admin import Admin
from mqkit.errors_amqp import translate_amqp_error
from mqkit.exceptions import BrokerRefused, ConfigError
from mqkit.routing import MAX_TOPIC_HASHES, Binding, route, split_topic_key

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("MQKIT_TEST_ROUTING_EXAMPLES", "300"))
POOL = 8
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None)

WORDS = ["a", "b", "sports", "tech", "", "*", "#"]
topic_keys = st.lists(st.sampled_from(WORDS), max_size=4).map(".".join)
direct_keys = st.sampled_from(["", "a", "A", "b", "sports", "a.b", "*", "#", " a"])
cc_headers = st.one_of(
    st.none(),
    st.fixed_dictionaries({"CC": st.lists(topic_keys, max_size=2)}),
    st.fixed_dictionaries({"BCC": st.lists(st.one_of(topic_keys, st.just(7)), max_size=2)}),
)

HEADER_NAMES = ["destination", "delivery_method", "x-a", "X-a", "x-match"]
header_values = st.one_of(
    st.sampled_from(["Paris", "Berlin", "1", "", "true"]),
    st.sampled_from([0, 1, 2**40, -1]),
    st.booleans(),
    st.none(),
    st.sampled_from([b"Paris", b"1"]),
    st.sampled_from([decimal.Decimal("1"), decimal.Decimal("1.50"), decimal.Decimal("1.5")]),
    st.just(datetime.datetime(1970, 1, 1, 0, 0, 1)),
    st.sampled_from([[1], ["Paris"], [1, "Paris"]]),
)
binding_names = st.sampled_from([n for n in HEADER_NAMES if n != "x-match"])
header_bindings = st.builds(
    lambda mode, args: args if mode is None else {"x-match": mode, **args},
    st.sampled_from([None, "all", "any", "all-with-x", "any-with-x"]),
    st.dictionaries(binding_names, header_values, max_size=3),
)
message_headers = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=3),
)


@pytest.fixture(scope="module")
def tally(request) -> Iterator[Counter]:
    counts: Counter = Counter()
    yield counts
    summary = ", ".join(f"{name}={n}" for name, n in sorted(counts.items()))
    report(request, f"routing model vs RabbitMQ: {summary}")


def report(request, line: str) -> None:
    """Show ``line`` in the terminal even while output is captured."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\n{line}")


@pytest.fixture(scope="module")
def amqp(wide_brokers) -> Iterator[tuple[pika.BlockingConnection, list[str]]]:
    """One connection per line and a pool of exclusive queues reused by every case.

    ``wide_brokers``: RabbitMQ 3.10 (process backend) and every Docker line (4.3, 4.0).
    """
    connection = pika.BlockingConnection(pika.URLParameters(wide_brokers.amqp_url))
    channel = connection.channel()
    queues = [channel.queue_declare("", exclusive=True).method.queue for _ in range(POOL)]
    version = Admin(wide_brokers).overview()["rabbitmq_version"]
    yield connection, queues, ".".join(version.split(".")[:2])
    connection.close()


#: Whether a line refuses a topic binding key with more than two ``#`` words (406). Seen:
#: 4.3.6 refuses ("uses 3 '#' wildcards, at most 2 are allowed"), 3.10.8 and 4.0.5 accept.
#: The model refuses (``mqkit.routing.MAX_TOPIC_HASHES``), as the newest line does.
REFUSES_MANY_HASHES = {"3.10": False, "4.0": False, "4.3": True}


class Broker:
    """The module's connection, with a channel that is reopened when the broker closes it."""

    def __init__(self, connection: pika.BlockingConnection, queues: list[str],
                 line: str) -> None:
        self.connection, self.queues, self.line = connection, queues, line
        self.channel = self._open()

    def _open(self):
        channel = self.connection.channel()
        channel.confirm_delivery()
        return channel

    def deliveries(self, exchange_type: str, bindings: list[tuple[str, dict]],
                   messages: list[tuple[str, dict | None]]) -> list[list[bool]]:
        """For each message, which of the bound queues got a copy."""
        channel = self.channel
        exchange = f"mqkit-test-routing-{uuid.uuid4().hex}"
        channel.exchange_declare(exchange, exchange_type, auto_delete=True)
        try:
            for queue, (key, args) in zip(self.queues, bindings, strict=False):
                channel.queue_bind(queue, exchange, key, arguments=args)
            seen = []
            for routing_key, headers in messages:
                channel.basic_publish(exchange, routing_key, b"probe",
                                      pika.BasicProperties(headers=headers))
                got = []
                for queue in self.queues[:len(bindings)]:
                    method, _props, _body = channel.basic_get(queue, auto_ack=True)
                    # One message published, one binding per queue: never a second copy.
                    assert method is None or method.message_count == 0
                    got.append(method is not None)
                seen.append(got)
            return seen
        finally:
            # A refused binding or publish closes the channel: carry on with a new one.
            if not channel.is_open:
                self.channel = self._open()
            # Deleting the exchange removes its bindings; the pooled queues are empty again.
            self.channel.exchange_delete(exchange)


@pytest.fixture(scope="module")
def broker(amqp) -> Broker:
    return Broker(*amqp)


def check(broker: Broker, tally: Counter, exchange_type: str,
          bindings: list[tuple[str, dict]], messages: list[tuple[str, dict | None]]) -> None:
    if exchange_type == "topic" and any(split_topic_key(key).count("#") > MAX_TOPIC_HASHES
                                        for key, _args in bindings):
        check_many_hashes(broker, tally, bindings, messages)
        return
    actual = broker.deliveries(exchange_type, bindings, messages)
    model_bindings = [Binding(q, key, args) for q, (key, args) in zip(broker.queues, bindings,
                                                                       strict=False)]
    for (routing_key, headers), got in zip(messages, actual, strict=True):
        matches = route(exchange_type, model_bindings, routing_key,
                        as_line_compares(broker.line, headers))
        expected = [m.matched for m in matches]
        assert expected == got, (
            f"{exchange_type}: routing key {routing_key!r}, headers {headers!r}\n"
            + "\n".join(f"  binding {b.binding_key!r} {b.arguments!r}: broker={g} "
                        f"model={m.matched} ({m.reason})"
                        for b, m, g in zip(model_bindings, matches, got, strict=True)))
        tally[f"{exchange_type}_messages"] += 1
        tally[f"{exchange_type}_bindings_judged"] += len(bindings)
    tally[f"{exchange_type}_cases"] += 1


#: Lines that compare a message's top-level timestamp header in seconds, as sent. The model
#: follows 4.0.5 and 4.3.6, which compare it in milliseconds (``mqkit.routing._message_term``).
TIMESTAMPS_IN_SECONDS = {"3.10"}


def as_line_compares(line: str, headers: dict | None) -> dict | None:
    """The headers as ``line`` compares them, for the model: on 3.10, a top-level timestamp
    is its seconds (the model, like 4.x, would take milliseconds)."""
    if line not in TIMESTAMPS_IN_SECONDS or not headers:
        return headers
    return {key: calendar.timegm(value.utctimetuple())
            if isinstance(value, datetime.datetime) else value
            for key, value in headers.items()}


def check_many_hashes(broker: Broker, tally: Counter, bindings: list[tuple[str, dict]],
                      messages: list[tuple[str, dict | None]]) -> None:
    """A binding key with too many ``#``: the model refuses it, and so does 4.3 (not 3.10)."""
    model_bindings = [Binding(q, key, args) for q, (key, args) in zip(broker.queues, bindings,
                                                                       strict=False)]
    with pytest.raises(ConfigError, match="'#' wildcards"):
        route("topic", model_bindings, *messages[0])
    if REFUSES_MANY_HASHES[broker.line]:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            broker.deliveries("topic", bindings, messages)
        assert info.value.reply_code == 406, info.value
        assert "wildcards" in info.value.reply_text, info.value
        tally["topic_many_hashes_refused_by_both"] += 1
    else:
        broker.deliveries("topic", bindings, messages)  # accepted: nothing to compare with
        tally["topic_many_hashes_accepted_by_broker"] += 1


def _keys(keys: list[str]) -> list[tuple[str, dict]]:
    return [(key, {}) for key in keys]


AWKWARD_BINDINGS = ["#", "#.#", "*", "", "a.#.b", "a..b", ".a", "a."]
AWKWARD_BINDINGS_2 = ["a.*", "*.b", "#.a", "a.#", "*.*", "#.*", "*.#", "a.#.#"]
AWKWARD_KEYS = ["", "a", ".", "..", "a..b", "a.b", "a.x.y.b", ".a", "a.", "*", "#", "a.*",
                "a.#.b", "a.b.b"]


@SETTINGS
@given(bindings=st.lists(topic_keys, min_size=1, max_size=5),
       messages=st.lists(st.tuples(topic_keys, cc_headers), min_size=1, max_size=4))
@example(bindings=AWKWARD_BINDINGS, messages=[(k, None) for k in AWKWARD_KEYS])
@example(bindings=AWKWARD_BINDINGS_2, messages=[(k, None) for k in AWKWARD_KEYS])
@example(bindings=["*", "a.*", "#", "*.#", "#.*", "a.b", "#.#.#", "*.*.*"],
         messages=[(k, None) for k in ["*", "a.*", "#", "*.#", "#.*", "*.*.*", ""]])
@example(bindings=["b", "b.*", "sports.#"],
         messages=[("a", {"CC": ["b"]}), ("a", {"BCC": ["x", "b.c"]}), ("a", {"CC": [7, "b"]})])
def _topic_cases(broker: Broker, tally: Counter, bindings, messages) -> None:
    check(broker, tally, "topic", _keys(bindings), messages)


@SETTINGS
@given(bindings=st.lists(direct_keys, min_size=1, max_size=5),
       messages=st.lists(st.tuples(direct_keys, cc_headers), min_size=1, max_size=4))
@example(bindings=["", "a", "A", "*", "#", "a.b"],
         messages=[("", None), ("a", None), ("*", None), ("#", None), ("b", {"CC": ["a"]})])
def _direct_cases(broker: Broker, tally: Counter, bindings, messages) -> None:
    check(broker, tally, "direct", _keys(bindings), messages)


@settings(SETTINGS, max_examples=max(EXAMPLES // 5, 10))
@given(bindings=st.lists(st.one_of(topic_keys, direct_keys), min_size=1, max_size=5),
       messages=st.lists(st.tuples(topic_keys, cc_headers), min_size=1, max_size=3))
def _fanout_cases(broker: Broker, tally: Counter, bindings, messages) -> None:
    check(broker, tally, "fanout", _keys(bindings), messages)


@SETTINGS
@given(bindings=st.lists(st.tuples(topic_keys, header_bindings), min_size=1, max_size=5),
       messages=st.lists(st.tuples(topic_keys, message_headers), min_size=1, max_size=4))
@example(bindings=[("", {"x-match": "all", "destination": 1}),
                   ("", {"x-match": "all", "destination": "1"}),
                   ("", {"x-match": "all", "destination": True}),
                   ("", {"x-match": "all", "destination": b"1"}),
                   ("", {"x-match": "any", "destination": None}),
                   ("", {"x-match": "all-with-x", "x-a": 1}),
                   ("", {"x-match": "any", "x-a": 1}),
                   ("", {"x-match": "any-with-x"})],
         messages=[("", {"destination": 1}), ("", {"destination": "1"}),
                   ("", {"destination": True}), ("", {"x-a": 1}), ("", None),
                   ("", {"destination": None}), ("", {"x-match": "any-with-x"}),
                   ("", {"destination": decimal.Decimal(1)})])
@example(bindings=[("", {"x-match": "all", "destination": 0}),
                   ("", {"x-match": "all", "destination": decimal.Decimal("1.5")}),
                   ("", {"destination": [1]}),
                   ("", {"x-match": "all", "destination": {"b": 1, "c": 2}})],
         messages=[("", {"destination": datetime.datetime(1970, 1, 1)}),
                   ("", {"destination": decimal.Decimal("1.50")}),
                   ("", {"destination": [1]}),
                   ("", {"destination": {"c": 2, "b": 1}}),
                   ("", {"destination": {"b": 1, "c": 2}})])
def _headers_cases(broker: Broker, tally: Counter, bindings, messages) -> None:
    check(broker, tally, "headers", bindings, messages)


@pytest.mark.parametrize("cases", [_topic_cases, _direct_cases, _fanout_cases, _headers_cases],
                         ids=["topic", "direct", "fanout", "headers"])
def test_model_agrees_with_rabbitmq(broker, tally, cases):
    name = cases.__name__.strip("_").removesuffix("_cases")
    cases(broker, tally)
    assert tally[f"{name}_cases"] >= min(EXAMPLES // 5, 10)


@pytest.mark.parametrize("x_match", ["all", "any", "all-with-x", "any-with-x", "ALL", "bogus",
                                     "", 1, b"all"])
def test_invalid_x_match_is_refused_by_both(broker, x_match):
    args = {"x-match": x_match, "destination": "Paris"}
    try:
        route("headers", [Binding("q", "", args)], "", {"destination": "Paris"})
        model_refuses = False
    except ConfigError:
        model_refuses = True
    if model_refuses:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            broker.deliveries("headers", [("", args)], [("", {"destination": "Paris"})])
        assert info.value.reply_code == 406
    else:
        assert broker.deliveries("headers", [("", args)], [("", {"destination": "Paris"})]) \
            == [[True]]


@pytest.mark.parametrize("cc", ["b", None, 7, {"a": "b"}])
def test_cc_that_is_not_an_array_is_refused_by_both(broker, cc):
    with pytest.raises(ConfigError):
        route("fanout", [Binding("q")], "", {"CC": cc})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        broker.deliveries("fanout", [("", {})], [("", {"CC": cc})])
    assert info.value.reply_code == 406


@pytest.mark.parametrize("key", ["#.#.#", "a.#.b.#.c.#"])
def test_too_many_hashes_per_line(broker, key):
    """Three ``#``: refused by the model and by 4.3 (translated, with a hint); 3.10 and 4.0
    accept the binding and route by it as the model judges bindings a broker took."""
    with pytest.raises(ConfigError, match=r"RabbitMQ 4\.3"):
        route("topic", [Binding("q", key)], "a.b.c")
    bindings, messages = [(key, {}), ("#", {})], [("a.b.c", None)]
    if REFUSES_MANY_HASHES[broker.line]:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            broker.deliveries("topic", bindings, messages)
        translated = translate_amqp_error(info.value, during="queue_bind")
        assert isinstance(translated, BrokerRefused)
        assert "drop the extra" in translated.hint
        assert key in str(translated)
    else:
        assert broker.deliveries("topic", bindings, messages) == [[True, True]]
        for routing_key in ("a.b.c", "x", ""):
            judged = route("topic", [Binding("q", key)], routing_key, accepted=True)
            assert [m.matched for m in judged] == \
                broker.deliveries("topic", [(key, {})], [(routing_key, None)])[0]
