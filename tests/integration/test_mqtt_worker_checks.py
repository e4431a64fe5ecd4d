"""The shared-workers check against a real Mosquitto: how the broker spread the tasks."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from mqkit import mqtt_client
from mqkit.clients.mqtt import mqtt_connect
from mqkit.grading import Check, Status
from mqkit.grading.mqtt_workers import shared_workers

pytestmark = pytest.mark.integration


@pytest.fixture
def topics():
    root = f"test/{uuid.uuid4().hex[:8]}"
    return f"{root}/tasks", f"{root}/results"


@pytest.fixture
def workers():
    started = []
    yield started
    for client in started:
        client.disconnect()
        client.loop_stop()


def start_worker(brokers, workers, name: str, topic_filter: str, results: str) -> None:
    """A worker like lab 11's: answers <tasks>/<id> with its name on <results>/<id>."""
    client = mqtt_client(brokers, client_id=f"{name}-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    subscribed = threading.Event()

    def on_task(c, userdata, message):
        c.publish(f"{results}/{message.topic.rsplit('/', 1)[-1]}", name, qos=1)

    client.on_message = on_task
    client.on_subscribe = lambda *args: subscribed.set()
    mqtt_connect(client=client)
    workers.append(client)
    client.subscribe(topic_filter, qos=1)
    assert subscribed.wait(5)


def check_for(tasks: str, results: str) -> Check:
    return Check("99.test", "test", "the hint", shared_workers,
                 params={"tasks": tasks, "results": results, "count": 10})


def test_no_worker(brokers, topics) -> None:
    result = check_for(*topics).run(brokers)
    assert result.status is Status.FAILED
    assert result.message.startswith("no result came back for the 10 tasks")


def test_plain_subscriptions_do_every_task_twice(brokers, topics, workers) -> None:
    tasks, results = topics
    for name in ("a", "b"):
        start_worker(brokers, workers, name, f"{tasks}/#", results)
    result = check_for(tasks, results).run(brokers)
    assert result.status is Status.FAILED
    assert result.message.startswith("10 of 10 tasks were done more than once"), result.message


def test_one_worker_alone_is_not_sharing(brokers, topics, workers) -> None:
    tasks, results = topics
    start_worker(brokers, workers, "a", f"$share/g/{tasks}/#", results)
    result = check_for(tasks, results).run(brokers)
    assert result.message == "one worker ('a') did all 10 tasks: start a second worker in " \
                             "the same group"


def test_a_shared_subscription_passes(brokers, topics, workers) -> None:
    tasks, results = topics
    for name in ("a", "b"):
        start_worker(brokers, workers, name, f"$share/g/{tasks}/#", results)
    result = check_for(tasks, results).run(brokers)
    assert result.is_passed, result.line()
    assert result.message.startswith("10 tasks, each done exactly once, shared by 2 workers")
