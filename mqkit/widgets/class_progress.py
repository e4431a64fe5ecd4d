"""ClassProgress: the instructor's live board, students × a lab's checks, for the projector.

A thin view over :class:`~mqkit.classroom.progress.ProgressBoard`: a background thread
refreshes the board every ``interval`` seconds and sets the HTML widget's value (never
``with output:`` from a thread). A refresh that fails shows one line with the reason and
the next one tries again; Stop ends the thread.

Example:
    >>> ClassProgress("course", lab="03")   # doctest: +SKIP
"""

from __future__ import annotations

import html
import logging
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from mqkit.classroom.progress import ProgressBoard, Verdict
from mqkit.exceptions import MQKitError

log = logging.getLogger(__name__)

_CELL = {None: ("·", "#999", "never checked"), True: ("✔", "#1a7f37", "passed"),
         False: ("✘", "#cf222e", "not yet")}


def board_html(board: ProgressBoard, *, note: str = "") -> str:
    """The board as an HTML table: a row per student, a column per check, the last activity.

    Each cell's tooltip says passed / not yet, when, and whether the student's self-check or
    the board's probe saw it.
    """
    checks = board.checks
    head = "".join(f"<th title='{html.escape(c)}' style='padding:2px 6px'>"
                   f"{html.escape(c.split('.', 1)[-1])}</th>" for c in checks)
    rows = []
    for row in board.grid():
        cells = "".join(_cell(row.verdicts.get(c)) for c in checks)
        done = row.passed(checks)
        rows.append(f"<tr><td style='padding:2px 6px'><b>{html.escape(row.id)}</b> "
                    f"{html.escape(row.name)}</td>{cells}"
                    f"<td style='padding:2px 6px'>{done}/{len(checks)}</td>"
                    f"<td style='padding:2px 6px'>{html.escape(row.last_activity or '-')}"
                    "</td></tr>")
    caption = f"lab {board.lab}" if board.lab else "every check seen"
    extra = f"<div>{html.escape(note)}</div>" if note else ""
    return (f"<div><b>Class progress — {html.escape(caption)}</b>{extra}"
            "<table style='border-collapse:collapse'>"
            f"<tr><th style='text-align:left'>student</th>{head}<th>done</th>"
            f"<th>last activity (UTC)</th></tr>{''.join(rows)}</table></div>")


def _cell(verdict: Verdict | None) -> str:
    symbol, colour, word = _CELL[None if verdict is None else verdict.passed]
    title = word if verdict is None else f"{word} at {verdict.time} ({verdict.source})"
    return (f"<td title='{html.escape(title)}' style='text-align:center;color:{colour};"
            f"padding:2px 6px'>{symbol}</td>")


class ClassProgress(widgets.VBox):  # type: ignore[misc]
    """The live progress board of a classroom folder.

    Args:
        folder: the classroom folder (``mqkit classroom create --out DIR``).
        lab: a lab number: columns are its checks (default: every check seen).
        admin_url: an administrator's management URL (default: ``MQKIT_MANAGEMENT_URL``,
            else mqkit's own brokers).
        interval: seconds between refreshes.
        probe: also run the lab's read-only checks on each student's namespace.
        board: a board to show instead of one made from the arguments above.

    Raises:
        ConfigError: no classroom in ``folder``, or a lab without checks.
    """

    def __init__(self, folder: str | Path | None = None, lab: str | None = None, *,
                 admin_url: str | None = None, interval: float = 10.0, probe: bool = True,
                 board: ProgressBoard | None = None, **kwargs: Any) -> None:
        if board is None:
            from mqkit.classroom import Classroom, connect

            if folder is None:
                raise TypeError("ClassProgress needs the classroom folder (or a board).")
            board = ProgressBoard(Classroom(folder), connect(admin_url), lab, probe=probe)
        self.board = board
        self.interval = max(1.0, interval)
        self.grid = widgets.HTML(board_html(board, note="starting…"))
        self.stop_button = widgets.Button(description="Stop", tooltip="stop refreshing")
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__([self.grid, self.stop_button], **kwargs)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mqkit-class-progress",
                                        daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        """Refresh the board once now and redraw it (a failure is shown, not raised)."""
        try:
            self.board.refresh()
            note = f"refreshed {time.strftime('%H:%M:%S')}, every {self.interval:g} s"
        except MQKitError as exc:
            log.warning("the progress board could not refresh: %s", exc.message)
            note = f"refresh failed: {exc.message.splitlines()[0]} (trying again)"
        self.grid.value = board_html(self.board, note=note)

    def stop(self) -> None:
        """Stop refreshing (the board stays as last drawn)."""
        self._stopped.set()
        self.stop_button.disabled = True

    def close(self) -> None:
        """Stop refreshing and close the widget."""
        self.stop()
        super().close()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self.refresh()
            self._stopped.wait(self.interval)
