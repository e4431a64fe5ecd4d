"""A registry of background workers, so a re-run notebook cell leaves no thread behind.

Inbox consumer threads, paho ``loop_start`` threads and keep-alive threads register under a
name: registering a new worker under a key stops the previous one. Everything still
registered is stopped when the interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    """Anything the registry can stop: an inbox, an MQTT loop, a notebook connection."""

    def stop(self) -> None:
        """Stop background threads and close connections; idempotent."""


class Pausable(Protocol):
    """A worker that consumes queues and can step aside for a while (an inbox)."""

    queues: list[str]

    def pause(self, timeout: float = 5.0) -> bool:
        """Stop consuming; True once the broker has no consumer of this worker left."""

    def resume(self) -> None:
        """Consume again."""


_REGISTRY: dict[str, Stoppable] = {}
_REGISTRY_LOCK = threading.Lock()


def register(key: str, worker: Stoppable) -> Stoppable | None:
    """Record ``worker`` under ``key``, stopping the worker registered there before.

    This is what makes a re-run cell safe: the new inbox (or MQTT loop) replaces the old
    one instead of running next to it. Returns the worker that was stopped, if any.
    """
    with _REGISTRY_LOCK:
        previous = _REGISTRY.get(key)
        _REGISTRY[key] = worker
    if previous is not None and previous is not worker:
        log.info("stopping the previous worker registered as %r", key)
        _stop_quietly(key, previous)  # its unregister() is a no-op: the key is ours now
        return previous
    return None


def unregister(key: str, worker: Stoppable | None = None) -> None:
    """Forget ``key`` (only if it still maps to ``worker``, when given); does not stop it."""
    with _REGISTRY_LOCK:
        if key in _REGISTRY and (worker is None or _REGISTRY[key] is worker):
            del _REGISTRY[key]


def stop(key: str) -> bool:
    """Stop and forget the worker registered under ``key``; False when there is none."""
    with _REGISTRY_LOCK:
        worker = _REGISTRY.pop(key, None)
    if worker is None:
        return False
    _stop_quietly(key, worker)
    return True


def stop_all() -> list[str]:
    """Stop every registered worker; return their keys (called at interpreter exit)."""
    with _REGISTRY_LOCK:
        items = list(_REGISTRY.items())
        _REGISTRY.clear()
    for key, worker in items:
        _stop_quietly(key, worker)
    return [key for key, _ in items]


def workers() -> dict[str, Stoppable]:
    """A snapshot of the registered workers by key."""
    with _REGISTRY_LOCK:
        return dict(_REGISTRY)


def consumers_of(queues: Iterable[str]) -> dict[str, Stoppable]:
    """The registered workers (by key) that consume any of ``queues`` (inboxes)."""
    wanted = set(queues)
    found = {}
    for key, worker in workers().items():
        # The instance's own attributes only: a notebook connection forwards unknown ones
        # to pika (and would reconnect to answer).
        if wanted & set(getattr(worker, "__dict__", {}).get("queues") or ()):
            found[key] = worker
    return found


@contextlib.contextmanager
def consumers_paused(queues: Iterable[str]) -> Iterator[list[Pausable]]:
    """Pause, for the ``with`` block, the registered workers that consume any of ``queues``.

    A live inbox that a lab leaves running would otherwise take the messages a probe
    publishes and then looks for in those queues (a predict-then-publish exercise, a check).

    Yields:
        The workers paused (resumed when the block ends, also on an error).
    """
    paused: list[Pausable] = []
    try:
        for worker in consumers_of(queues).values():
            if callable(getattr(type(worker), "pause", None)):
                pausable: Pausable = worker  # type: ignore[assignment]
                if pausable.pause():
                    paused.append(pausable)
        yield paused
    finally:
        for worker in paused:
            worker.resume()


def _stop_quietly(key: str, worker: Stoppable) -> None:
    try:
        worker.stop()
    except Exception as exc:
        log.warning("stopping %r failed: %r", key, exc)


atexit.register(stop_all)
