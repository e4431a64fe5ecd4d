"""RoutingExplainer, predict-then-publish and the exchange checks against the real RabbitMQ."""

from __future__ import annotations

import uuid

import pytest

from mqkit import clients
from mqkit.exceptions import ConfigError
from mqkit.grading import get_check
from mqkit.grading.exchanges import bound_queues, probe_routes
from mqkit.grading.predict import predict_then_publish
from mqkit.grading.registry import NotYet
from mqkit.routing import Binding, Message, destinations
from mqkit.widgets import RoutingExplainer, RoutingExplainerModel

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def channel(brokers):
    connection = clients.amqp_connection(brokers, name="test-routing-explainer")
    yield connection.channel()
    connection.close()


@pytest.fixture
def blog(brokers, channel):
    """A topic exchange, an exchange bound to it, and three durable queues."""
    exchange, archive = unique("blog"), unique("archive")
    queues = {key: unique("q") for key in ("sports.#", "#.technology", "*")}
    channel.exchange_declare(exchange, "topic", auto_delete=True)
    channel.exchange_declare(archive, "fanout", auto_delete=True)
    for key, queue in queues.items():
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, exchange, routing_key=key)
    archive_queue = unique("archived")
    channel.queue_declare(archive_queue, durable=True)
    channel.queue_bind(archive_queue, archive)
    channel.exchange_bind(destination=archive, source=exchange, routing_key="#.archive")
    yield exchange, archive, queues, archive_queue
    for queue in [*queues.values(), archive_queue]:
        channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    channel.exchange_delete(archive)


def test_model_reads_type_and_bindings_from_the_broker(brokers, blog) -> None:
    exchange, archive, queues, _ = blog
    model = RoutingExplainerModel.from_broker(brokers, exchange)
    assert model.exchange_type == "topic"
    assert sorted((b.destination, b.binding_key, b.destination_type) for b in model.bindings) \
        == sorted([(q, k, "queue") for k, q in queues.items()]
                  + [(archive, "#.archive", "exchange")])
    lines = model.lines("sports")
    assert f"✔ {queues['sports.#']}  binding key 'sports.#'  `#` matches zero words" \
        in "\n".join(lines)
    assert f"✔ exchange {archive}" in model.text("news.archive")


@pytest.mark.parametrize("key", ["sports", "sports.technology", "technology", "a.b",
                                 "", "news.archive", "sports..technology"])
def test_explainer_agrees_with_where_the_broker_puts_the_message(brokers, blog, key) -> None:
    exchange, archive, queues, archive_queue = blog
    model = RoutingExplainerModel.from_broker(brokers, exchange)
    predicted = set(destinations(model.explain(key)))
    if archive in predicted:  # the archive exchange passes it on to its one queue
        predicted = (predicted - {archive}) | {archive_queue}
    observed = probe_routes(brokers, exchange, {"m": key},
                            [*queues.values(), archive_queue])
    assert observed.received["m"] == predicted
    assert ("m" in observed.unroutable) == (not predicted)


def test_widget_reads_the_broker_and_reports_a_missing_exchange(brokers, blog) -> None:
    exchange, *_ = blog
    view = RoutingExplainer(brokers, exchange, routing_key="sports.football")
    assert "4 binding(s) read from the broker" in view.status.value
    assert "✔ matched" in view.table.value
    assert not view.refresh_button.disabled
    missing = RoutingExplainer(brokers, unique("nope"))
    assert "could not read the bindings" in missing.status.value
    assert "There is no exchange" in missing.status.value


def test_bound_queues_follow_exchange_to_exchange_bindings(brokers, blog) -> None:
    exchange, _archive, queues, archive_queue = blog
    assert bound_queues(brokers, exchange) == sorted([*queues.values(), archive_queue])
    assert bound_queues(brokers, "") == []


def test_probes_leave_other_messages_in_place(brokers, channel, blog) -> None:
    exchange, _archive, queues, _ = blog
    queue = queues["sports.#"]
    for i in range(3):
        channel.basic_publish("", queue, f"student {i}".encode())
    seen = probe_routes(brokers, exchange, {"a": "sports.x", "b": "sports"}, [queue])
    assert seen.received == {"a": {queue}, "b": {queue}}
    assert channel.queue_declare(queue, passive=True).method.message_count == 3
    bodies = [channel.basic_get(queue, auto_ack=True)[2] for _ in range(3)]
    assert sorted(bodies) == [b"student 0", b"student 1", b"student 2"]


def test_prediction_right_and_wrong(brokers, blog) -> None:
    exchange, _archive, queues, archive_queue = blog
    sports, tech, one = queues["sports.#"], queues["#.technology"], queues["*"]
    report = predict_then_publish(brokers, exchange, {
        "sports": {sports, one},            # right: `#` matches zero words
        "sports.technology": {sports},      # wrong: #.technology matches too
        "a.b": set(),                       # right: unroutable
        "x.archive": {archive_queue},       # right, through the exchange binding
    })
    assert report.queues == tuple(sorted([sports, tech, one, archive_queue]))
    assert report.right == 3
    assert not report.is_all_right
    text = str(report)
    assert "✘ 'sports.technology': the broker delivered it to " in text
    assert "3 of 4 messages predicted right." in text
    assert "(returned: no queue matched)" in text
    wrong_row = next(r for r in report.rows if r.label == "sports.technology")
    assert report.cell(wrong_row, tech) == "yes · you: no ✘"
    assert report.cell(wrong_row, sports) == "yes · you: yes ✔"
    assert report.cell(wrong_row, one) == "no · you: no ✔"


def test_prediction_with_headers_messages_and_a_typo(brokers, channel) -> None:
    exchange, queue = unique("parcels"), unique("berlin")
    channel.exchange_declare(exchange, "headers", auto_delete=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, arguments={"x-match": "any", "destination": "Berlin",
                                                   "n": 1})
    try:
        report = predict_then_publish(
            brokers, exchange, {"to Berlin": {queue}, "number one": {"berlni"}},
            messages={"to Berlin": {"destination": "Berlin"},
                      "number one": Message("x", {"n": 1}),
                      "string one": {"n": "1"}})
        assert [(r.label, r.is_right) for r in report.rows] == [
            ("to Berlin", True), ("number one", False), ("string one", True)]
        assert "note: there is no queue 'berlni'" in str(report)
        assert report.queues == (queue,)
    finally:
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)


def test_prediction_never_raises_in_notebook_mode(brokers) -> None:
    missing = unique("missing")
    report = predict_then_publish(brokers, missing, {"a": set()}, queues=[])
    assert str(report) == f"⚠ could not publish to exchange {missing!r}: there is no " \
                          f"exchange {missing!r}"
    with pytest.raises(NotYet):
        predict_then_publish(brokers, missing, {"a": set()}, queues=[], raise_errors=True)


def test_exclusive_queues_through_their_own_connection(brokers) -> None:
    connection = clients.notebook_connection(brokers, name=unique("test-exclusive"))
    try:
        channel = connection.channel()
        exchange = unique("news")
        channel.exchange_declare(exchange, "fanout", auto_delete=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, exchange)
        locked = predict_then_publish(brokers, exchange, {"hi": {queue}})
        assert "exclusive to another connection" in str(locked)
        report = predict_then_publish(brokers, exchange, {"hi": {queue}},
                                      connection=connection)
        assert report.is_all_right, str(report)
    finally:
        connection.close()


def _setup_check(channel, check_id: str, correct: bool) -> None:
    params = get_check(check_id).params
    exchange, queue = params["exchange"], params["queue"]
    kind = {"04": "direct", "05": "topic", "06": "fanout", "07": "headers"}[check_id[:2]]
    channel.exchange_declare(exchange, kind, durable=True)
    channel.queue_delete(queue)
    channel.queue_declare(queue, durable=True)
    bindings = {
        "04": [("Stock A", None), ("Stock B", None)],
        "05": [("sports.#", None), ("#.technology", None)],
        "06": [("", None)],
        "07": [("", {"x-match": "all", "destination": "Berlin",
                     "delivery_method": "express"})],
    }[check_id[:2]]
    if not correct:  # one binding short, or too wide
        bindings = bindings[:1] if len(bindings) > 1 else [("", {"x-match": "any",
                                                                 "destination": "Berlin"})]
        if kind == "fanout":
            bindings = []
    for key, arguments in bindings:
        channel.queue_bind(queue, exchange, routing_key=key, arguments=arguments)


@pytest.mark.parametrize("check_id", ["04.ticker-bindings", "05.topic-bindings",
                                      "06.new-subscriber", "07.express-berlin"])
def test_exchange_checks_pass_and_fail_on_the_real_broker(brokers, channel, check_id) -> None:
    check = get_check(check_id)
    params = check.params
    try:
        channel.queue_delete(params["queue"])
        absent = check.run(brokers)
        assert absent.status.value == "failed"
        assert absent.message == f"there is no queue {params['queue']!r}"
        _setup_check(channel, check_id, correct=False)
        wrong = check.run(brokers)
        assert wrong.status.value == "failed", wrong.line()
        assert wrong.hint
        _setup_check(channel, check_id, correct=True)
        channel.basic_publish("", params["queue"], b"kept")
        right = check.run(brokers)
        assert right.is_passed, right.line()
        # the probes are gone, the student's message stays
        assert channel.queue_declare(params["queue"], passive=True).method.message_count == 1
    finally:
        channel.queue_delete(params["queue"])
        channel.exchange_delete(params["exchange"])


def test_a_binding_the_broker_took_is_explained_not_refused(brokers) -> None:
    """RabbitMQ 3.10 (bookworm's, the process backend here) accepts a topic key with three
    '#', which 4.3 refuses: read from the broker, it is judged with a note, not refused for
    the whole exchange. A broker that refuses it is refused by the model too."""
    import pika

    exchange, queue = unique("hashes"), unique("q")
    connection = clients.amqp_connection(brokers, name="test-routing-explainer-hashes")
    channel = connection.channel()
    try:
        channel.exchange_declare(exchange, "topic", auto_delete=True)
        channel.queue_declare(queue, exclusive=True)
        try:
            channel.queue_bind(queue, exchange, routing_key="a.#.#.#")
        except pika.exceptions.ChannelClosedByBroker as refused:
            refusal = refused.reply_code
        else:
            refusal = None
        if refusal is not None:
            assert refusal == 406
            with pytest.raises(ConfigError, match=r"RabbitMQ 4\.3 refuses"):
                RoutingExplainerModel("topic", [Binding(queue, "a.#.#.#")]).lines("a.b")
            return
        model = RoutingExplainerModel.from_broker(brokers, exchange)
        lines = model.lines("a.b")
        assert lines[1].startswith(f"✔ {queue}  binding key 'a.#.#.#'")
        assert lines[1].endswith("(this broker took the key; RabbitMQ 4.3 refuses more than "
                                 "2 '#' in one)")
        assert lines[-1] == f"→ delivered to: {queue}"
        channel.exchange_delete(exchange)
    finally:
        if connection.is_open:
            connection.close()
