"""Jepsen-style accounting for the fault scenarios: what was sent, confirmed, received."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Ledger:
    """Message ids at each stage; the invariant is that no confirmed id is lost.

    Attributes:
        sent: ids handed to the client library.
        confirmed: ids the broker confirmed (publisher confirm, MQTT PUBACK).
        received: ids a consumer got, in order, repeats included.
    """

    sent: list[str] = field(default_factory=list)
    confirmed: set[str] = field(default_factory=set)
    received: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, message_id: str) -> None:
        with self._lock:
            self.sent.append(message_id)

    def confirm(self, message_id: str) -> None:
        with self._lock:
            self.confirmed.add(message_id)

    def receive(self, message_id: str) -> None:
        with self._lock:
            self.received.append(message_id)

    @property
    def lost(self) -> set[str]:
        """Confirmed ids that never arrived (must be empty)."""
        return self.confirmed - set(self.received)

    @property
    def duplicated(self) -> set[str]:
        """Ids that arrived more than once."""
        return {key for key, count in Counter(self.received).items() if count > 1}

    @property
    def unexpected(self) -> set[str]:
        """Ids that arrived but were never sent (must be empty)."""
        return set(self.received) - set(self.sent)

    def summary(self) -> str:
        return (f"sent={len(self.sent)} confirmed={len(self.confirmed)} "
                f"received={len(self.received)} lost={len(self.lost)} "
                f"duplicated={len(self.duplicated)}")

    def check(self, *, duplicates_allowed: bool = False) -> None:
        """Assert the invariants: nothing confirmed lost, nothing invented, no repeats."""
        assert not self.lost, f"confirmed but lost: {sorted(self.lost)[:10]} ({self.summary()})"
        assert not self.unexpected, f"never sent: {sorted(self.unexpected)[:10]}"
        if not duplicates_allowed:
            assert not self.duplicated, f"duplicated: {sorted(self.duplicated)[:10]}"
