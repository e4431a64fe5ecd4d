"""StartProgress keeps one display line up to date (the front end is faked: a recorder)."""

from __future__ import annotations

import time

from mqkit.brokers.progress import report, reporting_to
from mqkit.widgets.start_progress import ProgressLine, StartProgress


class Handle:
    def __init__(self, shown: list[str]) -> None:
        self.shown = shown

    def update(self, obj: ProgressLine) -> None:
        self.shown.append(repr(obj))


def recorder():
    shown: list[str] = []

    def display(obj, display_id=False):
        assert display_id is True  # one line that updates itself, not a stream of lines
        shown.append(repr(obj))
        return Handle(shown)

    return shown, display


def test_nothing_is_shown_when_nothing_was_reported():
    shown, display = recorder()
    progress = StartProgress(display)
    progress.finish()
    assert shown == []


def test_steps_and_elapsed_time_then_the_total():
    shown, display = recorder()
    progress = StartProgress(display)
    with reporting_to(progress):
        report("starting RabbitMQ, Mosquitto (process backend)…")
        time.sleep(1.2)  # the ticker updates the seconds twice a second
        report("Mosquitto ready")
    progress.finish()
    assert shown[0].startswith("starting RabbitMQ, Mosquitto (process backend)… 0.")
    ticks = [line for line in shown if line.startswith("starting")]
    assert len(ticks) >= 2, shown
    assert any(line.startswith("Mosquitto ready… ") for line in shown)
    assert shown[-1].startswith("brokers ready in ")


def test_a_failure_is_shown_with_its_first_line():
    shown, display = recorder()
    progress = StartProgress(display)
    with reporting_to(progress):
        report("starting RabbitMQ…")
    progress.finish(RuntimeError("RabbitMQ did not start\nlog lines…"))
    assert "the start failed after" in shown[-1]
    assert shown[-1].endswith("RabbitMQ did not start")
    assert "✘" in ProgressLine("x", "failed")._repr_html_()


def test_reports_outside_a_listener_go_nowhere_but_the_log(caplog):
    caplog.set_level("INFO", logger="mqkit.brokers.progress")
    report("starting Mosquitto…")
    assert "starting Mosquitto…" in caplog.text
