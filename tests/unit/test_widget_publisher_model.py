"""PublisherModel's publish path without a broker: a stand-in channel records what pika would
be asked to send (the thread-safety and reconnects are tested against RabbitMQ in
tests/integration/test_clients.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mqkit.widgets import PublisherModel, PublishResult


class RecordingChannel:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.is_closed = False

    def basic_publish(self, *args: Any) -> None:
        self.sent.append(args)


class OneChannelConnection:
    def __init__(self) -> None:
        self.channel_ = RecordingChannel()

    def channel(self) -> RecordingChannel:
        return self.channel_


@pytest.fixture
def model() -> PublisherModel:
    return PublisherModel(connection=OneChannelConnection())  # type: ignore[arg-type]


def test_results_are_values_reused_per_address(model: PublisherModel) -> None:
    first = model.publish("", "q1", b"a")
    again = model.publish("", "q1", b"b")
    other = model.publish("ex", "q1", b"c")
    assert first == again == PublishResult(True, "", "q1")
    assert other == PublishResult(True, "ex", "q1")
    assert model.published == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.detail = "changed"  # type: ignore[misc]


def test_properties_follow_headers_changed_in_place(model: PublisherModel) -> None:
    headers = {"destination": "Berlin"}
    model.publish("", "q", b"1", headers=headers, persistent=True)
    model.publish("", "q", b"2", headers=headers, persistent=True)
    headers["destination"] = "Paris"
    model.publish("", "q", b"3", headers=headers, persistent=True)
    model.publish("", "q", b"4")
    sent = model.connection.channel_.sent  # type: ignore[attr-defined]
    properties = [args[3] for args in sent]
    assert properties[0] is properties[1]  # built once while nothing changes
    assert properties[0].headers == {"destination": "Berlin"}
    assert properties[0].delivery_mode == 2
    assert properties[2].headers == {"destination": "Paris"}
    assert properties[3] is None
