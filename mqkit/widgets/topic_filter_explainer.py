"""TopicFilterExplainer: which MQTT topic filters match a topic, and why.

The verdicts come from the pure model in :mod:`mqkit.routing`; no broker is involved.

Example:
    >>> TopicFilterExplainer(["sport/+", "sport/#"], "sport/tennis")   # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets

from mqkit.exceptions import ConfigError
from mqkit.routing import TopicMatch, topic_matches


@dataclass(frozen=True)
class FilterVerdict:
    """One filter's verdict for a topic.

    Attributes:
        topic_filter: the filter.
        matched: whether a subscriber with it receives the message (False when invalid).
        reason: why, in a sentence (or why the filter or topic is invalid).
        is_valid: False when the broker would refuse the filter (or the topic).
    """

    topic_filter: str
    matched: bool
    reason: str
    is_valid: bool = True


class TopicFilterModel:
    """Which of several MQTT topic filters match a topic, and why (pure, no broker).

    Args:
        filters: topic filters (blank entries are ignored).
        topic: the topic a message is published to.

    Example:
        >>> model = TopicFilterModel(["sport/+", "sport/#"], "sport/tennis/player1")
        >>> [v.matched for v in model.explain()]
        [False, True]
    """

    def __init__(self, filters: Sequence[str] = (), topic: str = "") -> None:
        self.filters = [f for f in filters if f.strip()]
        self.topic = topic

    def explain(self) -> list[FilterVerdict]:
        """A verdict per filter, in the order given."""
        verdicts = []
        for topic_filter in self.filters:
            try:
                match: TopicMatch = topic_matches(topic_filter, self.topic)
            except ConfigError as exc:
                verdicts.append(FilterVerdict(topic_filter, False, exc.message, False))
                continue
            verdicts.append(FilterVerdict(topic_filter, match.matched, match.reason))
        return verdicts

    def matching(self) -> list[str]:
        """The filters that match the topic."""
        return [v.topic_filter for v in self.explain() if v.matched]

    def lines(self) -> list[str]:
        """One line per filter: ``✔``/``✘``/``⚠ invalid``, the filter, and the reason."""
        marks = {True: "✔ match   ", False: "✘ no match"}
        return [f"{marks[v.matched] if v.is_valid else '⚠ invalid '} {v.topic_filter!r}: "
                f"{v.reason}" for v in self.explain()]


class TopicFilterExplainer(widgets.VBox):
    """Type filters (one per line) and a topic; see which filters match and why.

    Args:
        filters: initial filters.
        topic: initial topic.

    Example:
        >>> TopicFilterExplainer(["sport/+", "sport/#", "+/tennis/#"], "sport/tennis/player1")
        ... # doctest: +SKIP
    """

    def __init__(self, filters: Sequence[str] = (), topic: str = "") -> None:
        self.model = TopicFilterModel(filters, topic)
        self.filters = widgets.Textarea("\n".join(self.model.filters), description="filters",
                                        placeholder="one filter per line, e.g. sport/#",
                                        rows=max(3, len(self.model.filters)))
        self.topic = widgets.Text(topic, description="topic", placeholder="e.g. sport/tennis")
        self.result = widgets.HTML()
        self.filters.observe(lambda _change: self.render(), names="value")
        self.topic.observe(lambda _change: self.render(), names="value")
        super().__init__([self.filters, self.topic, self.result])
        self.render()

    def render(self) -> None:
        """Re-read the form into the model and show the verdicts."""
        self.model.filters = [f for f in self.filters.value.splitlines() if f.strip()]
        self.model.topic = self.topic.value
        body = "\n".join(html.escape(line) for line in self.model.lines())
        self.result.value = f"<pre style='margin:0'>{body or '(no filters)'}</pre>"
