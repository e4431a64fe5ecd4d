"""A broker start shown live in a notebook: the current step and the seconds so far.

``mqkit.start_brokers()`` in a notebook never freezes silently: when it has to wait (brokers
booting, or another notebook or ``mqkit lab`` starting them), one output line appears and
updates itself — ``starting RabbitMQ, Mosquitto (process backend)… 3.1 s`` — and ends as
``RabbitMQ and Mosquitto ready in 6.2 s``. Reusing running brokers shows nothing. The line
is a display with plain-text and HTML forms, so it reads the same in JupyterLab and in a
text-only front end.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

#: Seconds between updates of the elapsed time.
TICK = 0.5


class ProgressLine:
    """One line of progress (what a display shows)."""

    def __init__(self, text: str, state: str = "running") -> None:
        self.text = text
        self.state = state

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        mark = {"running": "⏳", "done": "✔", "failed": "✘"}[self.state]
        return (f'<div style="font-family: var(--jp-ui-font-family, sans-serif)">'
                f"{mark} {html.escape(self.text)}</div>")


class StartProgress:
    """Listens to a start's steps and keeps one display line up to date.

    Args:
        display: IPython's ``display`` (the front end); called as
            ``display(obj, display_id=True)`` and returning a handle with ``update(obj)``.
    """

    def __init__(self, display: Callable[..., Any] | None = None) -> None:
        if display is None:
            from IPython.display import display as ipython_display

            display = ipython_display
        self._display = display
        self._handle: Any = None
        self._step = ""
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self, step: str) -> None:
        """A new step (the listener of :func:`mqkit.brokers.progress.reporting_to`)."""
        with self._lock:
            self._step = step.rstrip("…").rstrip(".")
            if self._handle is None:
                self._handle = self._display(self._line(), display_id=True)
                self._thread = threading.Thread(target=self._tick, name="mqkit-start-progress",
                                                daemon=True)
                self._thread.start()
            else:
                self._handle.update(self._line())

    def finish(self, error: BaseException | None = None) -> None:
        """The start ended: show how long it took, or that it failed (nothing if no step)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        with self._lock:
            if self._handle is None:
                return
            seconds = time.monotonic() - self._started
            if error is None:
                line = ProgressLine(f"brokers ready in {seconds:.1f} s", "done")
            else:
                first = str(error).splitlines()[0] if str(error) else type(error).__name__
                line = ProgressLine(f"the start failed after {seconds:.1f} s: {first}",
                                    "failed")
            self._handle.update(line)

    def _line(self) -> ProgressLine:
        return ProgressLine(f"{self._step}… {time.monotonic() - self._started:.1f} s")

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                if self._stop.is_set():
                    return
                self._handle.update(self._line())
