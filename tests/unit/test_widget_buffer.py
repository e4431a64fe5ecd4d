"""MessageBuffer, behind both inboxes: bounded, counted, thread-safe, notifications throttled."""

from __future__ import annotations

import threading
import time

import pytest

from mqkit.widgets import buffer as buffer_module
from mqkit.widgets.buffer import MessageBuffer, Snapshot


class Calls:
    """A listener that remembers the count it saw each time it was called."""

    def __init__(self, buffer: MessageBuffer[str]) -> None:
        self.buffer = buffer
        self.seen: list[int] = []

    def __call__(self) -> None:
        self.seen.append(self.buffer.count)

    def wait_until_seen(self, count: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seen and self.seen[-1] == count:
                return True
            time.sleep(0.01)
        return False


def fill(buffer: MessageBuffer[str], n: int, prefix: str = "m") -> None:
    for number in range(n):
        buffer.append(lambda seq, number=number: f"{seq}:{prefix}{number}")
        buffer.notify()


def test_keeps_the_last_limit_and_counts_all() -> None:
    buffer: MessageBuffer[str] = MessageBuffer(limit=3)
    assert buffer.snapshot() == Snapshot((), 0)
    fill(buffer, 10)
    assert buffer.count == 10
    assert buffer.messages == ["8:m7", "9:m8", "10:m9"]
    messages, count = buffer.snapshot()
    assert (messages, count) == (("8:m7", "9:m8", "10:m9"), 10)


def test_clear_resets_count_and_numbering_and_tells_listeners() -> None:
    buffer: MessageBuffer[str] = MessageBuffer(limit=3)
    calls = Calls(buffer)
    buffer.listeners.append(calls)
    fill(buffer, 5)
    buffer.clear()
    assert calls.seen[-1] == 0
    assert buffer.snapshot() == Snapshot((), 0)
    assert buffer.append(lambda seq: f"{seq}:again") == "1:again"


def test_wait_for_wakes_when_the_count_is_reached_from_another_thread() -> None:
    buffer: MessageBuffer[str] = MessageBuffer(limit=5)
    assert buffer.wait_for(0, timeout=0)
    assert not buffer.wait_for(1, timeout=0.01)
    results: dict[int, bool] = {}
    waiters = [threading.Thread(target=lambda n=n, timeout=timeout: results.update(
        {n: buffer.wait_for(n, timeout)})) for n, timeout in ((50, 5), (100, 5), (101, 0.3))]
    for waiter in waiters:
        waiter.start()
    fill(buffer, 100)
    for waiter in waiters:
        waiter.join(6)
    assert results == {50: True, 100: True, 101: False}


def test_concurrent_appends_lose_nothing_and_snapshots_stay_consistent() -> None:
    buffer: MessageBuffer[int] = MessageBuffer(limit=20)
    inconsistent: list[Snapshot[int]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            snapshot = buffer.snapshot()
            # Messages are their own seq here: the newest kept one is always the count.
            if snapshot.messages and snapshot.messages[-1] != snapshot.count:
                inconsistent.append(snapshot)

    writers = [threading.Thread(target=lambda: [buffer.append(lambda seq: seq)
                                                for _ in range(5000)]) for _ in range(4)]
    reader = threading.Thread(target=read)
    reader.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(30)
    done.set()
    reader.join(5)
    assert buffer.count == 20000
    assert buffer.messages == list(range(19981, 20001))
    assert inconsistent == []


def test_a_burst_is_notified_a_few_times_and_its_end_always() -> None:
    buffer: MessageBuffer[str] = MessageBuffer(limit=5)
    calls = Calls(buffer)
    buffer.listeners.append(calls)
    fill(buffer, 2000)
    assert calls.wait_until_seen(2000), calls.seen  # the trailing notification
    assert len(calls.seen) <= 5, calls.seen  # not one per message


def test_a_forced_notification_replaces_the_pending_trailing_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buffer_module, "NOTIFY_INTERVAL", 0.3)
    buffer: MessageBuffer[str] = MessageBuffer(limit=5, name="forced")
    calls = Calls(buffer)
    buffer.listeners.append(calls)
    fill(buffer, 3)  # the first is told at once, the others wait for a trailing one
    assert calls.seen == [1]
    assert any(t.name == "mqkit-render-forced" for t in threading.enumerate())
    buffer.notify(force=True)
    assert calls.seen == [1, 3]
    time.sleep(0.5)
    assert calls.seen == [1, 3]


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    buffer: MessageBuffer[str] = MessageBuffer(limit=5, name="failing")

    def fail() -> None:
        raise RuntimeError("boom")

    calls = Calls(buffer)
    buffer.listeners.extend([fail, calls])
    fill(buffer, 1)
    assert calls.seen == [1]
    assert "inbox failing: a listener failed" in caplog.text
