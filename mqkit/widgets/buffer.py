"""MessageBuffer: the last ``limit`` messages a background thread received, all of them counted.

Both inboxes record into one. The receiving thread (the pika consumer, paho's loop) appends;
notebook code waits with :meth:`MessageBuffer.wait_for`; a view reads a consistent
:meth:`MessageBuffer.snapshot` when it is told that something changed. Listeners are told at
most every :data:`NOTIFY_INTERVAL` seconds while messages stream in, plus once after a burst,
so the last messages of a burst always show.

Example:
    >>> buffer = MessageBuffer(limit=2)
    >>> for word in ("a", "b", "c"):
    ...     _ = buffer.append(lambda seq: f"{seq}:{word}")
    >>> buffer.snapshot()
    Snapshot(messages=('2:b', '3:c'), count=3)
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

log = logging.getLogger(__name__)

#: Seconds between two notifications while messages stream in.
NOTIFY_INTERVAL = 0.1
_NEVER = float("inf")

M = TypeVar("M")


class Snapshot(NamedTuple, Generic[M]):
    """The kept messages and the total count, read together.

    Attributes:
        messages: the last ``limit`` messages, oldest first.
        count: how many were received in total (since the last clear).
    """

    messages: tuple[M, ...]
    count: int


class MessageBuffer(Generic[M]):
    """A thread-safe, bounded record of received messages with throttled change notification.

    Args:
        limit: how many of the latest messages are kept.
        name: names the timer thread of the trailing notification (``mqkit-render-NAME``).

    Attributes:
        listeners: called with no arguments, from whichever thread notifies, after changes.
    """

    def __init__(self, limit: int = 20, *, name: str = "inbox") -> None:
        self.limit = limit
        self.name = name
        self.listeners: list[Callable[[], None]] = []
        self._messages: deque[M] = deque(maxlen=limit)
        self._count = 0
        self._condition = threading.Condition()
        # Waiters are woken only when the count reaches what one of them waits for, not on
        # every message (that would make the waiting thread fight the receiving one).
        self._targets: list[int] = []
        self._wake_at = _NEVER
        # Serialises listener calls, so a view never shows an older snapshot after a newer one.
        self._notify_lock = threading.RLock()
        self._notified_at = 0.0
        self._timer: threading.Timer | None = None

    @property
    def count(self) -> int:
        """How many messages were received in total (since the last :meth:`clear`)."""
        return self._count

    @property
    def messages(self) -> list[M]:
        """A copy of the kept messages, oldest first (safe while messages arrive)."""
        with self._condition:
            return list(self._messages)

    def snapshot(self) -> Snapshot[M]:
        """The kept messages and the count, taken together under the lock."""
        with self._condition:
            return Snapshot(tuple(self._messages), self._count)

    def append(self, build: Callable[[int], M]) -> M:
        """Record the message ``build(seq)`` returns; ``seq`` is its number (1 = first).

        The message is built under the lock, so numbers follow the order of recording even
        when :meth:`clear` runs meanwhile. Listeners are not told: call :meth:`notify`.
        """
        with self._condition:
            self._count += 1
            message = build(self._count)
            self._messages.append(message)
            if self._count >= self._wake_at:
                self._condition.notify_all()
        return message

    def clear(self) -> None:
        """Forget the kept messages and reset the count; tell the listeners."""
        with self._condition:
            self._messages.clear()
            self._count = 0
        self.notify(force=True)

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until ``count >= n``; return whether it got there within ``timeout``."""
        with self._condition:
            self._targets.append(n)
            self._wake_at = min(self._targets)
            try:
                return self._condition.wait_for(lambda: self._count >= n, timeout)
            finally:
                self._targets.remove(n)
                self._wake_at = min(self._targets, default=_NEVER)

    def notify(self, force: bool = False) -> None:
        """Tell the listeners, at most every :data:`NOTIFY_INTERVAL` unless ``force``.

        A notification held back schedules one trailing notification (a short-lived timer
        thread), so the end of a burst shows without another message. A forced one cancels
        it, which is why the owner's ``stop`` ends with ``notify(force=True)``.
        """
        with self._notify_lock:
            now = time.monotonic()
            wait = self._notified_at + NOTIFY_INTERVAL - now
            if not force and wait > 0:
                if self._timer is None:
                    timer = threading.Timer(wait, self._trailing)
                    timer.args = (timer,)
                    timer.name = f"mqkit-render-{self.name}"
                    timer.daemon = True
                    self._timer = timer
                    timer.start()
                return
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
            self._notified_at = now
            for listener in list(self.listeners):
                try:
                    listener()
                except Exception:
                    log.exception("inbox %s: a listener failed", self.name)

    def _trailing(self, timer: threading.Timer) -> None:
        with self._notify_lock:
            if self._timer is not timer:  # a forced notification came first
                return
            self.notify(force=True)


class BufferedModel(Generic[M]):
    """Base of the inbox models: what they keep and how to wait for it, from their ``buffer``.

    A subclass sets ``self.buffer`` in ``__init__`` and appends to it from its background
    thread; these members (and :class:`~mqkit.widgets.inbox_view.InboxSource`'s
    ``snapshot``, ``subscribe`` and ``unsubscribe``) are the same for every inbox.
    """

    buffer: MessageBuffer[M]

    @property
    def received(self) -> list[M]:
        """A copy of the last ``limit`` messages, oldest first."""
        return self.buffer.messages

    @property
    def count(self) -> int:
        """How many messages were received in total (since the last :meth:`clear`)."""
        return self.buffer.count

    @property
    def listeners(self) -> list[Callable[[], None]]:
        """Called (from a background thread, no arguments) after new messages were recorded."""
        return self.buffer.listeners

    def clear(self) -> None:
        """Forget the kept messages and reset the count."""
        self.buffer.clear()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until ``count >= n``; return whether it got there within ``timeout``."""
        return self.buffer.wait_for(n, timeout)

    def snapshot(self) -> Snapshot[M]:
        """The kept messages and the total count, read together."""
        return self.buffer.snapshot()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from a background thread, no arguments) after changes."""
        self.buffer.listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener`` (no error when it was not subscribed)."""
        with contextlib.suppress(ValueError):
            self.buffer.listeners.remove(listener)
