"""Predict, then publish: a student's routing prediction against what the broker does.

The student writes which queues each message will reach; :func:`predict_then_publish`
publishes the messages to the real exchange (publisher confirms, ``mandatory``), observes
which queues received each (see :func:`mqkit.grading.exchanges.probe_routes`; the probes are
taken out of the queues again) and returns a table. Each cell says three things apart: what
the broker did (did the queue get the message?), what the student predicted, and whether the
prediction was right. In a notebook it never raises: a problem becomes the report's error
line.

Example:
    >>> predict_then_publish(endpoints, "lab04.stocks", {
    ...     "Stock A": {"lab04.stock-A", "lab04.portfolio"},
    ...     "Stock F": set(),
    ... }, queues=["lab04.portfolio", "lab04.stock-A"])           # doctest: +SKIP
    prediction vs broker, exchange 'lab04.stocks'
    each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
    message  lab04.portfolio   lab04.stock-A
    Stock A  yes · you: yes ✔  yes · you: yes ✔
    Stock F  no · you: no ✔    no · you: no ✔  (returned: no queue matched)
    2 of 2 messages predicted right.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mqkit.endpoints import Endpoints
from mqkit.grading.exchanges import MessageSpec, bound_queues, probe_routes

log = logging.getLogger(__name__)

#: What a prediction for one message may be: queue names (a set, list or tuple) or one name.
Prediction = Mapping[str, Iterable[str] | str | None]


@dataclass(frozen=True)
class PredictionRow:
    """One message: what the student predicted, and where the broker put it."""

    label: str
    predicted: frozenset[str]
    received: frozenset[str]
    is_unroutable: bool = False

    @property
    def is_right(self) -> bool:
        """True when the prediction is exactly the set of queues that got the message."""
        return self.predicted == self.received


class PredictionTable:
    """What the AMQP and MQTT prediction reports share: the counts, the cells, the layout.

    A subclass is a frozen dataclass with ``rows`` and ``error``; its ``lines`` make the text
    that a notebook shows (``repr``).
    """

    rows: tuple[PredictionRow, ...]
    error: str

    @property
    def right(self) -> int:
        """How many rows (messages or topics) were predicted exactly right."""
        return sum(row.is_right for row in self.rows)

    @property
    def is_all_right(self) -> bool:
        """True when every row was predicted right (and nothing went wrong)."""
        return not self.error and bool(self.rows) and self.right == len(self.rows)

    def cell(self, row: PredictionRow, column: str) -> str:
        """``yes · you: no ✘``: what the broker did, what was predicted, right or wrong."""
        got, said = column in row.received, column in row.predicted
        return (f"{'yes' if got else 'no'} · you: {'yes' if said else 'no'} "
                f"{'✔' if got == said else '✘'}")

    @staticmethod
    def aligned(table: list[list[str]]) -> list[str]:
        """The rows of ``table`` as text, each column padded to its widest cell."""
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        return ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                for cells in table]

    def lines(self) -> list[str]:
        """The report as text lines."""
        raise NotImplementedError

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        # What a notebook cell shows when the report is its last expression.
        return str(self)


@dataclass(frozen=True, repr=False)
class PredictionReport(PredictionTable):
    """Prediction vs broker; shows as a text table (its ``repr``) in a notebook.

    Attributes:
        exchange: the exchange the messages went to.
        queues: the observed queues (the table's columns).
        rows: one row per message.
        notes: remarks (missing queues, consumers that may have taken messages).
        error: why nothing could be published, or ''.
    """

    exchange: str
    queues: tuple[str, ...] = ()
    rows: tuple[PredictionRow, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    error: str = ""

    def table(self) -> list[list[str]]:
        """The table as rows of strings, headers first."""
        rows = [["message", *self.queues]]
        rows.extend([row.label or "(empty)", *(self.cell(row, q) for q in self.queues)]
                    for row in self.rows)
        return rows

    def lines(self) -> list[str]:
        """The report as text lines."""
        where = repr(self.exchange) if self.exchange else "'' (the default exchange)"
        if self.error:
            return [f"⚠ could not publish to exchange {where}: {self.error}"]
        lines = [f"prediction vs broker, exchange {where}",
                 "each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong"]
        for index, text in enumerate(self.aligned(self.table())):
            if index and self.rows[index - 1].is_unroutable:
                text += "  (returned: no queue matched)"
            lines.append(text)
        for row in self.rows:
            if not row.is_right:
                lines.append(f"✘ {row.label or '(empty)'!r}: the broker delivered it to "
                             f"{_names(row.received)}; you predicted {_names(row.predicted)}")
        lines.append(f"{self.right} of {len(self.rows)} messages predicted right.")
        lines.extend(f"note: {note}" for note in self.notes)
        return lines


def _names(queues: Iterable[str]) -> str:
    names = sorted(queues)
    return ", ".join(names) if names else "no queue"


def as_set(value: Iterable[str] | str | None) -> frozenset[str]:
    """A prediction's value as a set: ``None`` is none, a string is one name."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset([value])
    return frozenset(value)


def predict_then_publish(endpoints: Endpoints | None, exchange: str, prediction: Prediction,
                         *, messages: Mapping[str, MessageSpec] | None = None,
                         queues: Iterable[str] | None = None, connection: Any = None,
                         raise_errors: bool = False) -> PredictionReport:
    """Publish the predicted messages to ``exchange`` and compare with the prediction.

    Args:
        endpoints: the brokers (ignored when ``connection`` is given).
        exchange: the exchange to publish to (``''``: the default exchange).
        prediction: message label -> the queues it will reach (an empty set: none).
        messages: label -> routing key, headers dict or :class:`~mqkit.routing.Message`
            (default: each label is the routing key). Labels missing from ``prediction`` are
            predicted to reach no queue.
        queues: the queues to observe (default: every queue the exchange reaches through
            its bindings, plus every queue in the prediction).
        connection: a connection to use, e.g. the one that owns exclusive queues.
        raise_errors: raise instead of reporting an error (for tests and graders).

    Returns:
        The report; it shows as a text table when it is the last expression of a cell.
    """
    messages = dict(messages) if messages is not None else {label: label
                                                            for label in prediction}
    predicted = {label: as_set(prediction.get(label)) for label in messages}
    try:
        if queues is None:
            observed = bound_queues(endpoints, exchange) if endpoints is not None else []
        else:
            observed = list(queues)
        for targets in predicted.values():
            observed.extend(targets)
        observed = sorted(dict.fromkeys(observed))
        seen = probe_routes(endpoints, exchange, messages, observed, connection=connection)
    except Exception as exc:
        if raise_errors:
            raise
        log.info("predict_then_publish failed: %r", exc)
        from mqkit.grading.registry import NotYet, _describe

        why = str(exc) if isinstance(exc, NotYet) else _describe(exc)
        return PredictionReport(exchange, error=why)
    notes = [f"there is no queue {q!r}" for q in seen.missing] + seen.notes
    columns = tuple(q for q in observed if q not in seen.missing)
    rows = tuple(PredictionRow(label, predicted[label], frozenset(seen.received[label]),
                               label in seen.unroutable) for label in messages)
    return PredictionReport(exchange, columns, rows, tuple(notes))
