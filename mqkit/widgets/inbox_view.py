"""InboxView: the view both inboxes share (title, counter, start/stop toggle, last messages).

The view depends only on :class:`InboxSource`, the few things it reads from a model; the
AMQP :class:`~mqkit.widgets.InboxModel` and the :class:`~mqkit.widgets.MQTTInboxModel` both
provide them. Rendering is safe from the model's background thread: it sets widget values,
never ``with output:``.

Example:
    >>> view = InboxView(source, "<b>Inbox</b> orders", format_line=str)   # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import ipywidgets as widgets


@runtime_checkable
class InboxSource(Protocol):
    """What :class:`InboxView` needs from a model that receives messages in the background."""

    @property
    def is_running(self) -> bool:
        """True while messages are being received (False once a stop was asked for)."""

    @property
    def error(self) -> BaseException | None:
        """The last error of the background receiver, or ``None``."""

    def start(self) -> None:
        """Start receiving; raise when that is impossible."""

    def stop(self) -> None:
        """Stop receiving; the kept messages stay (idempotent)."""

    def snapshot(self) -> tuple[Sequence[Any], int]:
        """The kept messages (oldest first) and the total count, read together."""

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread, no arguments) after changes."""

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener`` (no error when it was not subscribed)."""


class InboxView(widgets.VBox):
    """Title, counter, start/stop toggle and the last messages of an :class:`InboxSource`.

    Args:
        model: the source of messages.
        title: HTML shown first (escape what came from the user).
        format_line: one line of text for one message (escaped here).
        start: start the model at once.

    Attributes:
        model: the source.
        counter: "N received, showing the last K (running)" and the last error, if any.
        toggle: stops a running source, starts a stopped one.
        messages: the kept messages, one line each.
    """

    def __init__(self, model: InboxSource, title: str, *,
                 format_line: Callable[[Any], str] = str, start: bool = True) -> None:
        self.model = model
        self.format_line = format_line
        self.title = widgets.HTML(title)
        self.counter = widgets.Label("0 received")
        self.toggle = widgets.Button(description="Stop", icon="stop")
        self.toggle.on_click(lambda _button: self._toggle())
        self.messages = widgets.HTML("<pre style='margin:0'>(no messages yet)</pre>")
        super().__init__([widgets.HBox([self.title, self.counter, self.toggle]),
                          self.messages])
        model.subscribe(self.render)
        if start:
            self.start()

    def start(self) -> None:
        """Start receiving (see the model's ``start``)."""
        self.model.start()
        self.render()

    def stop(self) -> None:
        """Stop receiving; the messages shown stay."""
        self.model.stop()
        self.render()

    def close(self) -> None:
        """Stop the model's background thread and close the widget."""
        self.model.stop()
        self.model.unsubscribe(self.render)
        super().close()

    def _toggle(self) -> None:
        try:
            if self.model.is_running:
                self.stop()
            else:
                self.start()
        except Exception as exc:  # shown, not raised: a button click has no cell to fail
            self.counter.value = f"{type(exc).__name__}: {exc}"

    def render(self) -> None:
        """Update the view from the model (safe to call from the background thread)."""
        messages, count = self.model.snapshot()
        lines = [self.format_line(message) for message in messages]
        state = "running" if self.model.is_running else "stopped"
        error = self.model.error
        error_text = f" — {type(error).__name__}: {error}" if error is not None else ""
        self.counter.value = (f"{count} received, showing the last {len(lines)} "
                              f"({state}){error_text}")
        self.toggle.description = "Stop" if state == "running" else "Start"
        self.toggle.icon = "stop" if state == "running" else "play"
        body = "\n".join(html.escape(line) for line in lines) or "(no messages yet)"
        self.messages.value = f"<pre style='margin:0'>{body}</pre>"
