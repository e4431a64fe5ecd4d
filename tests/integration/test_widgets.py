import re
import threading
import time
import uuid

import pika
import pytest

from mqkit import clients
from mqkit.brokers.process import ProcessBackend
from mqkit.config import Settings
from mqkit.exceptions import ConfigError
from mqkit.widgets import BrokerPanel, Publisher, PublisherModel, QueueInbox, TopologyView
from tests.helpers import require

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def inbox_threads(key: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"mqkit-{key}" and t.is_alive()]


@pytest.fixture
def channel(brokers):
    connection = clients.amqp_connection(brokers, name="test-widgets")
    yield connection.channel()
    connection.close()


def ready_count(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def test_publisher_to_inbox_exactly_once(brokers, channel):
    queue = unique("inbox")
    channel.queue_declare(queue, durable=True)
    bodies: list[bytes] = []
    inbox = QueueInbox(queue, brokers, limit=20,
                       on_message=lambda message: bodies.append(message.body))
    publisher = PublisherModel(brokers)
    try:
        for i in range(2000):
            publisher.publish("", queue, f"m{i}")
        assert inbox.model.wait_for(2000, timeout=30)
        time.sleep(0.5)  # a duplicate would arrive now
        assert inbox.model.count == 2000
        assert sorted(bodies) == sorted(f"m{i}".encode() for i in range(2000))
        assert len(inbox.model.received) == 20
        assert [m.text for m in inbox.model.received] == [f"m{i}" for i in range(1980, 2000)]
        assert not any(m.redelivered for m in inbox.model.received)
        inbox.render()
        assert "2000 received, showing the last 20" in inbox.counter.value
        assert inbox.messages.value.count("\n") == 19
        assert "m1999" in inbox.messages.value
    finally:
        inbox.close()
        publisher.close()
    assert ready_count(channel, queue) == 0  # all acked
    channel.queue_delete(queue)


def test_inbox_stop_and_start(brokers, channel):
    queue = unique("stopstart")
    channel.queue_declare(queue, durable=True)
    inbox = QueueInbox(queue, brokers, limit=5)
    try:
        channel.basic_publish("", queue, b"first")
        assert inbox.model.wait_for(1, 10)
        inbox.stop()
        assert not inbox.model.is_running
        assert inbox_threads(inbox.model.key) == []
        for i in range(50):
            channel.basic_publish("", queue, f"while stopped {i}".encode())
        time.sleep(0.5)
        assert inbox.model.count == 1
        assert ready_count(channel, queue) == 50  # waiting in the queue, not lost
        inbox.start()
        assert inbox.model.wait_for(51, 10)
        assert inbox.model.received[-1].text == "while stopped 49"
    finally:
        inbox.close()
    channel.queue_delete(queue)


def test_inbox_on_several_queues(brokers, channel):
    queues = [unique("a"), unique("b")]
    for queue in queues:
        channel.queue_declare(queue, exclusive=False, durable=True)
    inbox = QueueInbox(queues, brokers)
    try:
        channel.basic_publish("", queues[0], b"to a")
        channel.basic_publish("", queues[1], b"to b")
        assert inbox.model.wait_for(2, 10)
        assert {(m.queue, m.text) for m in inbox.model.received} == {
            (queues[0], "to a"), (queues[1], "to b")}
    finally:
        inbox.close()
    for queue in queues:
        channel.queue_delete(queue)


def test_recreating_an_inbox_stops_the_old_thread(brokers, channel):
    queue = unique("rerun")
    channel.queue_declare(queue, durable=True)
    first = QueueInbox(queue, brokers)
    key = first.model.key
    assert len(inbox_threads(key)) == 1
    second = QueueInbox(queue, brokers)  # the cell is run again
    try:
        assert not first.model.is_running
        assert len(inbox_threads(key)) == 1
        assert clients.workers()[key] is second.model
        channel.basic_publish("", queue, b"only the new one")
        assert second.model.wait_for(1, 10)
        assert first.model.count == 0
    finally:
        second.close()
    assert inbox_threads(key) == []
    assert key not in clients.workers()
    channel.queue_delete(queue)


def test_inbox_on_a_missing_queue_says_so(brokers):
    with pytest.raises(ConfigError) as caught:
        QueueInbox(unique("missing"), brokers)
    assert "404" in str(caught.value)


def test_publisher_widget_reports_results_and_errors(brokers, channel):
    queue = unique("pub")
    channel.queue_declare(queue, durable=True)
    publisher = Publisher(brokers, routing_key=queue, body="hello", key=unique("publisher"))
    try:
        publisher.headers.value = "destination=Berlin\ndelivery_method=truck"
        publisher.persistent.value = True
        result = publisher.publish()
        assert result is not None
        assert result.ok
        assert result.is_confirmed
        _method, properties, body = channel.basic_get(queue, auto_ack=True)
        assert body == b"hello"
        assert properties.headers == {"destination": "Berlin", "delivery_method": "truck"}
        assert properties.delivery_mode == 2
        assert properties.content_type == "text/plain"

        publisher.routing_key.value = unique("nowhere")
        result = publisher.publish()
        assert result is not None
        assert not result.ok
        assert "unroutable" in publisher.output.outputs[-1]["text"]

        publisher.exchange.value = unique("no-such-exchange")
        assert publisher.publish() is None
        assert "NOT_FOUND" in publisher.output.outputs[-1]["text"]

        publisher.exchange.value = ""
        publisher.routing_key.value = queue
        publisher.headers.value = "no equals sign"
        assert publisher.publish() is None
        assert "ConfigError" in publisher.output.outputs[-1]["text"]

        publisher.headers.value = '{"n": 1}'
        assert publisher.publish().ok  # the channel re-opened after the 404
        assert channel.basic_get(queue, auto_ack=True)[1].headers == {"n": 1}
    finally:
        publisher.close()
    channel.queue_delete(queue)


def test_topology_view_shows_a_declared_queue_with_its_count(brokers, channel):
    exchange, queue = unique("blog"), unique("sports")
    channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="sports.#")
    for _ in range(3):
        channel.basic_publish(exchange, "sports.football", b"goal",
                              pika.BasicProperties(delivery_mode=2))
    view = TopologyView(brokers)
    try:
        svg = view.picture.value
        assert f'data-queue="{queue}" data-messages="3"' in svg
        assert f'data-exchange="{exchange}"' in svg
        assert f'data-source="{exchange}" data-destination="{queue}"' in svg
        assert "sports.#" in svg
        assert 'data-exchange="amq.topic"' not in svg
        channel.basic_get(queue, auto_ack=True)
        view.refresh_button.click()
        assert f'data-queue="{queue}" data-messages="2"' in view.picture.value
    finally:
        view.close()
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)


def test_broker_panel_starts_restarts_and_stops_its_own_brokers(tmp_path):
    availability = ProcessBackend(Settings.from_env(env={}, state_dir=tmp_path)).availability()
    require(availability.is_available, f"process backend: {availability.reason}")
    panel = BrokerPanel(backend="process", state_dir=tmp_path)
    try:
        assert panel.table.value.count(">not started<") == 2
        panel.buttons["start"].click()
        assert panel.table.value.count(">running<") == 2, panel.message.value
        assert "127.0.0.1" in panel.table.value
        assert ":***@" in panel.table.value  # the password is not shown
        panel.which.value = "mosquitto"
        panel.buttons["restart"].click()
        assert panel.wait(120)  # a restart goes on in the background
        assert "restarted mosquitto" in panel.message.value
        assert panel.table.value.count(">running<") == 2
    finally:
        panel.buttons["stop"].click()
    assert ">running<" not in panel.table.value
    assert "stopped" in panel.message.value


def pids(status) -> dict[str, str]:
    """Each broker's ``pid N`` (the process backend's detail reads ``pid N, port P``)."""
    return {s.broker: s.detail.split(",")[0] for s in status["brokers"]}


def test_broker_panel_shows_a_restart_in_progress_and_stays_free(broker_factory):
    backend = broker_factory("process")  # brokers of this test's own: they get restarted
    panel = BrokerPanel(backend="process", state_dir=str(backend.settings.state_dir))
    try:
        before = pids(panel.model.status())
        assert all(pid.startswith("pid ") for pid in before.values()), before
        panel.which.value = "all"
        clicked = time.monotonic()
        panel.buttons["restart"].click()
        assert time.monotonic() - clicked < 2  # the kernel is not held for the restart
        assert all(control.disabled for control in (*panel.buttons.values(), panel.which))
        seen = []
        while panel.model.restarting.is_running and time.monotonic() - clicked < 120:
            seen.append((panel.table.value, panel.message.value))
            time.sleep(0.2)
        assert panel.wait(30)

        first_table, first_message = seen[0]
        assert re.search(r"restarting… \d+ s", first_table), first_table
        assert re.search(r"restarting all… \d+ s", first_message), first_message
        for table, _message in seen:  # the old brokers are never shown as running
            assert not any(f"{pid}," in table for pid in before.values()), table
        elapsed = {int(m) for _table, message in seen
                   for m in re.findall(r"restarting all… (\d+) s", message)}
        assert len(elapsed) >= 2, elapsed  # the count went on while the restart ran

        after = pids(panel.model.status())
        assert after.keys() == before.keys()
        assert all(after[name] != before[name] for name in before), (before, after)
        assert panel.table.value.count(">running<") == 2
        assert "restarting" not in panel.table.value
        assert re.fullmatch(r"restarted all in \d+ s", panel.message.value)
        assert not any(control.disabled for control in (*panel.buttons.values(), panel.which))
    finally:
        panel.close()
        backend.stop()


def test_broker_panel_shows_a_failed_restart_in_one_line(tmp_path):
    panel = BrokerPanel(backend="process", state_dir=str(tmp_path))  # nothing started here
    panel.buttons["restart"].click()
    assert panel.wait(30)
    assert ("restart all failed: The process backend has no brokers running. Hint: Start them "
            "with mqkit.start_brokers() or `mqkit up`.") in panel.message.value
    assert "Traceback" not in panel.message.value
    assert "\n" not in panel.message.value
    assert not any(button.disabled for button in panel.buttons.values())


def test_a_live_inbox_steps_aside_for_a_probe_and_then_goes_on(brokers, channel):
    # Labs leave their inboxes running after Run All; a later predict-then-publish must still
    # find its probes in the queues the inbox consumes, and the inbox must go on afterwards.
    from mqkit.grading.exchanges import probe_routes

    exchange, queue = unique("ex"), unique("q")
    channel.exchange_declare(exchange, exchange_type="direct", auto_delete=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="k")
    inbox = QueueInbox(queue, brokers, key=unique("inbox"))
    try:
        channel.basic_publish(exchange, "k", b"before")
        assert inbox.model.wait_for(1, timeout=5)
        for _ in range(3):  # every time: a consuming inbox would take some probes
            seen = probe_routes(brokers, exchange, {"one": "k", "two": "k"}, [queue])
            assert seen.received == {"one": {queue}, "two": {queue}}
        assert inbox.model.count == 1, "the inbox took a probe"
        assert inbox.model.is_running
        channel.basic_publish(exchange, "k", b"after")
        assert inbox.model.wait_for(2, timeout=5)
        assert [m.text for m in inbox.model.received] == ["before", "after"]
    finally:
        inbox.close()
        channel.queue_delete(queue)
