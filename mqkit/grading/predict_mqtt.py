"""Predict, then publish, for MQTT: which subscriptions receive which topic, on Mosquitto.

The student writes, for each topic, the topic filters whose subscribers will receive a
message published to it; :func:`predict_then_publish` subscribes one fresh client per filter
on the real Mosquitto, publishes every topic (QoS 1, not retained, bounded waits; see
:func:`mqkit.grading.mqtt.deliveries`) and returns a table like the AMQP one of
:mod:`mqkit.grading.predict`: each cell says what the broker did, what the student
predicted, and whether that was right. In a notebook it never raises: a problem becomes the
report's error line.

Example:
    >>> from mqkit.grading import predict_mqtt
    >>> predict_mqtt.predict_then_publish(endpoints, ["a/+", "#"], {
    ...     "a/b": {"a/+", "#"},
    ...     "$x/b": set(),
    ... })                                                          # doctest: +SKIP
    prediction vs Mosquitto: which subscriptions received each topic
    each cell: did the subscription get it? · what you predicted · ✔ right / ✘ wrong
    topic  a/+               #
    a/b    yes · you: yes ✔  yes · you: yes ✔
    $x/b   no · you: no ✔    no · you: no ✔
    2 of 2 topics predicted right.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mqkit.endpoints import Endpoints
from mqkit.grading.predict import PredictionRow, PredictionTable, as_set

log = logging.getLogger(__name__)

#: What a prediction for one topic may be: filters (a set, list or tuple) or one filter.
Prediction = Mapping[str, Iterable[str] | str | None]


@dataclass(frozen=True, repr=False)
class MQTTPredictionReport(PredictionTable):
    """Prediction vs Mosquitto; shows as a text table (its ``repr``) in a notebook.

    Attributes:
        subscriptions: the topic filters (the table's columns).
        rows: one row per topic (``received`` holds the filters whose subscriber got it).
        notes: remarks (predicted filters nobody subscribed with, ``$SYS`` topics).
        error: why nothing could be published, or ''.
    """

    subscriptions: tuple[str, ...] = ()
    rows: tuple[PredictionRow, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    error: str = ""

    def table(self) -> list[list[str]]:
        """The table as rows of strings, headers first."""
        rows = [["topic", *self.subscriptions]]
        rows.extend([row.label, *(self.cell(row, f) for f in self.subscriptions)]
                    for row in self.rows)
        return rows

    def _names(self, filters: Iterable[str]) -> str:
        chosen = set(filters)
        ordered = [f for f in self.subscriptions if f in chosen]
        ordered += sorted(chosen - set(ordered))
        return ", ".join(ordered) if ordered else "no subscription"

    def lines(self) -> list[str]:
        """The report as text lines."""
        if self.error:
            return [f"⚠ could not subscribe and publish on Mosquitto: {self.error}"]
        lines = ["prediction vs Mosquitto: which subscriptions received each topic",
                 "each cell: did the subscription get it? · what you predicted · "
                 "✔ right / ✘ wrong"]
        lines.extend(self.aligned(self.table()))
        for row in self.rows:
            if not row.is_right:
                lines.append(f"✘ {row.label!r}: Mosquitto delivered it to "
                             f"{self._names(row.received)}; you predicted "
                             f"{self._names(row.predicted)}")
        lines.append(f"{self.right} of {len(self.rows)} topics predicted right.")
        lines.extend(f"note: {note}" for note in self.notes)
        return lines


def predict_then_publish(endpoints: Endpoints | None, subscriptions: Sequence[str],
                         prediction: Prediction, *, topics: Sequence[str] | None = None,
                         raise_errors: bool = False) -> MQTTPredictionReport:
    """Subscribe with each filter, publish each topic, and compare with the prediction.

    Args:
        endpoints: the brokers (:func:`mqkit.start_brokers`).
        subscriptions: the topic filters, one fresh subscriber each (the table's columns).
        prediction: topic -> the filters whose subscriber will receive it (``set()``: none).
        topics: the topics to publish, in this order (default: the prediction's keys);
            topics missing from ``prediction`` are predicted to reach no subscription.
        raise_errors: raise instead of reporting an error (for tests and graders).

    Returns:
        The report; it shows as a text table when it is the last expression of a cell.
        Nothing is retained and nothing stays subscribed afterwards.
    """
    from mqkit.grading.mqtt import deliveries

    filters = tuple(dict.fromkeys(subscriptions))
    topics = list(dict.fromkeys(topics if topics is not None else prediction))
    try:
        if endpoints is None:
            raise ValueError("no brokers given: pass the endpoints of mqkit.start_brokers()")
        predicted = {topic: as_set(prediction.get(topic)) for topic in topics}
        received = deliveries(endpoints, filters, topics)
    except Exception as exc:
        if raise_errors:
            raise
        log.info("predict_then_publish (MQTT) failed: %r", exc)
        from mqkit.grading.registry import NotYet, _describe

        why = str(exc) if isinstance(exc, NotYet) else _describe(exc)
        return MQTTPredictionReport(filters, error=why)
    rows = tuple(PredictionRow(topic, predicted[topic],
                               frozenset(f for f, got in zip(filters, received, strict=True)
                                         if index in got))
                 for index, topic in enumerate(topics))
    notes = []
    unknown = sorted({f for chosen in predicted.values() for f in chosen} - set(filters))
    if unknown:
        notes.append(f"nobody subscribed with {', '.join(map(repr, unknown))}: the "
                     f"subscriptions are {', '.join(map(repr, filters))}")
    ignored = [topic for topic in prediction if topic not in predicted]
    if ignored:
        notes.append(f"not published, so not compared: {', '.join(map(repr, ignored))}")
    if any(topic == "$SYS" or topic.startswith("$SYS/") for topic in topics):
        notes.append("Mosquitto acknowledges what a client publishes under $SYS, then drops "
                     "it: those topics are the broker's own")
    return MQTTPredictionReport(filters, rows, tuple(notes))
