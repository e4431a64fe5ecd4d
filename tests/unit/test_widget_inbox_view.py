"""InboxView driven through InboxSource alone: a fake source at the view's boundary."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from mqkit.exceptions import BrokerConnectionError
from mqkit.widgets import InboxModel, MQTTInboxModel
from mqkit.widgets.inbox_view import InboxSource, InboxView


class FakeSource:
    """Exactly the members of InboxSource, nothing else: the view can use no other."""

    def __init__(self, *, fail_start: BaseException | None = None) -> None:
        self.is_running = False
        self.error: BaseException | None = None
        self.fail_start = fail_start
        self.lines: list[str] = []
        self.count = 0
        self.listeners: list[Callable[[], None]] = []
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_start is not None:
            raise self.fail_start
        self.is_running = True

    def stop(self) -> None:
        self.calls.append("stop")
        self.is_running = False

    def snapshot(self) -> tuple[Sequence[str], int]:
        return tuple(self.lines), self.count

    def subscribe(self, listener: Callable[[], None]) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        self.listeners.remove(listener)

    def receive(self, *lines: str) -> None:
        """What a background receiver does: record, then tell the listeners."""
        self.lines = [*self.lines, *lines][-2:]
        self.count += len(lines)
        for listener in list(self.listeners):
            listener()


def test_the_fake_and_both_real_models_are_inbox_sources() -> None:
    assert isinstance(FakeSource(), InboxSource)
    assert isinstance(InboxModel("q", "amqp://guest:guest@127.0.0.1:1/"), InboxSource)
    assert isinstance(MQTTInboxModel("a/#", "mqtt://u:p@127.0.0.1:1"), InboxSource)


def test_view_starts_the_source_and_shows_its_messages_escaped() -> None:
    source = FakeSource()
    view = InboxView(source, "<b>Fake</b> inbox", format_line=str.upper)
    assert source.calls == ["start"]
    assert view.title.value == "<b>Fake</b> inbox"
    assert view.counter.value == "0 received, showing the last 0 (running)"
    assert "(no messages yet)" in view.messages.value
    assert view.toggle.description == "Stop"
    source.receive("one", "<two>", "three")
    assert view.counter.value == "3 received, showing the last 2 (running)"
    assert view.messages.value == "<pre style='margin:0'>&lt;TWO&gt;\nTHREE</pre>"
    view.close()


def test_view_is_updated_from_the_receiving_thread() -> None:
    source = FakeSource()
    view = InboxView(source, "Fake", start=False)
    receiver = threading.Thread(target=source.receive, args=("from a thread",))
    receiver.start()
    receiver.join(5)
    assert "from a thread" in view.messages.value
    assert view.counter.value == "1 received, showing the last 1 (stopped)"
    view.close()


def test_toggle_stops_and_starts_and_shows_errors() -> None:
    source = FakeSource()
    view = InboxView(source, "Fake")
    view.toggle.click()
    assert source.calls == ["start", "stop"]
    assert view.toggle.description == "Start"
    assert view.toggle.icon == "play"
    source.error = BrokerConnectionError("lost the connection")
    view.toggle.click()
    assert source.calls == ["start", "stop", "start"]
    assert view.counter.value.startswith(
        "0 received, showing the last 0 (running) — BrokerConnectionError: lost the connection")
    view.close()


def test_a_failed_start_from_the_button_is_shown_not_raised() -> None:
    source = FakeSource(fail_start=BrokerConnectionError("no broker"))
    view = InboxView(source, "Fake", start=False)
    view.toggle.click()
    assert view.counter.value.startswith("BrokerConnectionError: no broker")
    with pytest.raises(BrokerConnectionError):
        view.start()  # called from a cell, it raises
    view.close()


def test_close_stops_the_source_and_unsubscribes() -> None:
    source = FakeSource()
    view = InboxView(source, "Fake")
    assert source.listeners == [view.render]
    view.close()
    assert source.calls == ["start", "stop"]
    assert source.listeners == []
    source.receive("after close")  # nobody renders into a closed view
