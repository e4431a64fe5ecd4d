"""BrokerPanel: the state of both brokers, with start, stop and restart buttons.

A restart takes 10–15 s (RabbitMQ boots again), so it runs in a background thread: the panel
stays usable, shows ``restarting… N s`` instead of the old broker's pid, and a second thread
updates that line about once a second by setting widget values (never ``with output:``).

Example:
    >>> BrokerPanel()   # doctest: +SKIP
"""

from __future__ import annotations

import html
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from mqkit.brokers import launcher
from mqkit.brokers.base import BrokerStatus, check_broker_name
from mqkit.exceptions import MQKitError

log = logging.getLogger(__name__)

#: Seconds between two updates of a running restart's elapsed time.
TICK = 1.0


def error_line(action: str, exc: BaseException) -> str:
    """One line for a failed action: what failed, the first line of why, and the hint.

    Example:
        >>> from mqkit.exceptions import BrokerNotRunning
        >>> error_line("restart", BrokerNotRunning("No brokers.", hint="Start them."))
        'restart failed: No brokers. Hint: Start them.'
    """
    if isinstance(exc, MQKitError):
        why, hint = exc.message, exc.hint
    else:
        why, hint = f"{type(exc).__name__}: {exc}", None
    lines = why.strip().splitlines() or [type(exc).__name__]
    # The rest of a start error's message is the broker's log tail: the log keeps it, the
    # panel shows one readable line.
    line = f"{action} failed: {lines[0].strip()}"
    return f"{line} Hint: {' '.join(hint.split())}" if hint else line


@dataclass
class Restart:
    """A restart running in a background thread (see :meth:`BrokerPanelModel.begin_restart`).

    Attributes:
        broker: what was asked: ``rabbitmq``, ``mosquitto`` or ``all``.
        brokers: the brokers it restarts.
        started: :func:`time.monotonic` when it began.
        finished: :func:`time.monotonic` when it ended, ``None`` while it runs.
        endpoints: the brokers' endpoints once it succeeded.
        error: why it failed, or ``None``.
    """

    broker: str
    brokers: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    endpoints: Any = None
    error: BaseException | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def is_running(self) -> bool:
        """True until the new broker is ready, or the restart failed."""
        return not self._done.is_set()

    @property
    def elapsed(self) -> float:
        """Seconds since it began (until it ended, once it has)."""
        return (self.finished if self.finished is not None else time.monotonic()) - self.started

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until it ends; False when ``timeout`` seconds passed first."""
        return self._done.wait(timeout)

    def describe(self) -> str:
        """One line: ``restarting all… 3 s``, ``restarted all in 14 s`` or what failed."""
        if self.is_running:
            return f"restarting {self.broker}… {self.elapsed:.0f} s"
        if self.error is not None:
            return error_line(f"restart {self.broker}", self.error)
        return f"restarted {self.broker} in {self.elapsed:.0f} s"


class BrokerPanelModel:
    """Start, stop, restart and inspect the brokers through :mod:`mqkit.brokers.launcher`.

    Args:
        backend: ``auto`` (default), ``docker``, ``process`` or ``external``.
        **settings: any :class:`~mqkit.config.Settings` field (e.g. ``state_dir``).

    Attributes:
        restarting: the last restart begun with :meth:`begin_restart`, or ``None``.
    """

    def __init__(self, backend: str | None = None, **settings: Any) -> None:
        self.backend = backend
        self.settings = settings
        self.restarting: Restart | None = None

    def status(self) -> dict[str, Any]:
        """What :func:`mqkit.broker_status` reports."""
        return launcher.broker_status(self.backend, **self.settings)

    def start(self) -> Any:
        """Start (or reuse) both brokers; return their endpoints."""
        return launcher.start_brokers(self.backend, **self.settings)

    def stop(self) -> list[str]:
        """Stop the brokers mqkit started."""
        return launcher.stop_brokers(self.backend, **self.settings)

    def restart(self, broker: str = "all") -> Any:
        """Restart ``rabbitmq``, ``mosquitto`` or ``all`` (durable data is kept)."""
        return launcher.active_backend(self.backend, **self.settings).restart(broker)

    def begin_restart(self, broker: str = "all") -> Restart:
        """Begin :meth:`restart` in a background thread and return at once.

        A restart still under way is returned instead of beginning a second one.

        Raises:
            ConfigError: an unknown broker name.
        """
        if self.restarting is not None and self.restarting.is_running:
            return self.restarting
        restart = Restart(broker, check_broker_name(broker, allow_all=True))
        self.restarting = restart
        threading.Thread(target=self._restart_in_thread, args=(restart,),
                         name=f"mqkit-restart-{broker}", daemon=True).start()
        return restart

    def _restart_in_thread(self, restart: Restart) -> None:
        try:
            restart.endpoints = self.restart(restart.broker)
        except Exception as exc:
            log.warning("restarting %s failed: %s", restart.broker, exc)
            restart.error = exc
        finally:
            restart.finished = time.monotonic()
            restart._done.set()


def status_html(status: dict[str, Any], restart: Restart | None = None) -> str:
    """An HTML table of :func:`mqkit.broker_status`'s answer (passwords left out).

    Args:
        status: what :func:`mqkit.broker_status` returned.
        restart: a running restart: its brokers show ``restarting… N s``, not the old pid.
    """
    restarting: tuple[str, ...] = ()
    elapsed = 0.0
    if restart is not None and restart.is_running:
        restarting, elapsed = restart.brokers, restart.elapsed
    brokers = list(status.get("brokers") or ())
    if restarting and not brokers:
        brokers = [BrokerStatus(name, False, "") for name in restarting]
    if not brokers:
        return "<p>No brokers are running. Press <b>Start</b>.</p>"
    rows = []
    for s in brokers:
        if s.broker in restarting:
            state = ("darkorange", f"restarting… {elapsed:.0f} s")
            detail = "waiting until the new broker is ready"
        else:
            state = ("green", "running") if s.is_running else ("firebrick", "stopped")
            detail = s.detail
        rows.append(f"<tr><td>{html.escape(s.broker)}</td>"
                    f"<td style='color:{state[0]}'>{state[1]}</td>"
                    f"<td>{html.escape(detail)}</td></tr>")
    endpoints = status.get("endpoints")
    urls = ""
    if endpoints is not None:
        urls = "".join(f"<tr><td>{label}</td><td colspan='2'><code>{html.escape(value)}</code>"
                       f"</td></tr>" for label, value in (
                           ("AMQP", endpoints.amqp.redacted()),
                           ("MQTT", endpoints.mqtt.redacted()),
                           ("management", endpoints.management.redacted()
                            if endpoints.management else "")) if value)
    return (f"<p>backend: <b>{html.escape(str(status.get('backend')))}</b></p>"
            f"<table><tr><th>broker</th><th>state</th><th>detail</th></tr>{''.join(rows)}"
            f"{urls}</table>")


class BrokerPanel(widgets.VBox):
    """Broker status with Start, Stop, Restart and Refresh buttons.

    Restart runs in the background (see the module docstring); :meth:`wait` waits for it.

    Args:
        backend: ``auto`` (default), ``docker``, ``process`` or ``external``.
        **settings: any :class:`~mqkit.config.Settings` field.

    Example:
        >>> BrokerPanel()   # doctest: +SKIP
    """

    def __init__(self, backend: str | None = None, **settings: Any) -> None:
        self.model = BrokerPanelModel(backend, **settings)
        self.table = widgets.HTML()
        self.message = widgets.HTML()
        self.which = widgets.Dropdown(options=["all", "rabbitmq", "mosquitto"], value="all",
                                      description="restart", layout={"width": "200px"})
        self.buttons = {
            name: widgets.Button(description=name.capitalize(), icon=icon)
            for name, icon in (("start", "play"), ("stop", "stop"), ("restart", "repeat"),
                               ("refresh", "refresh"))
        }
        for name, button in self.buttons.items():
            button.on_click(lambda _button, action=name: self.run(action))
        # The last status read: shown, with the restarting brokers marked, during a restart.
        self._status: dict[str, Any] = {}
        self._follower: threading.Thread | None = None
        super().__init__([self.table, widgets.HBox([*self.buttons.values(), self.which]),
                          self.message])
        self.refresh()

    def refresh(self) -> None:
        """Read the status again (during a restart: show its progress)."""
        restart = self.model.restarting
        if restart is not None and restart.is_running:
            self.table.value = status_html(self._status, restart)
            return
        try:
            self._status = self.model.status()
            self.table.value = status_html(self._status)
        except Exception as exc:
            self.table.value = f"<p>status unknown: {html.escape(str(exc))}</p>"

    def run(self, action: str) -> None:
        """Do ``start``, ``stop``, ``restart`` or ``refresh``; errors are shown, not raised.

        ``restart`` returns at once and goes on in the background (see :meth:`wait`).
        """
        if action == "restart":
            self._begin_restart()
            return
        self._set_busy(True)
        self.message.value = f"<i>{action}…</i>"
        try:
            if action == "start":
                self.model.start()
                done = "started"
            elif action == "stop":
                stopped = self.model.stop()
                done = f"stopped {', '.join(stopped) or 'nothing'}"
            else:
                done = ""
            self.message.value = html.escape(done)
        except Exception as exc:
            log.info("broker panel %s failed: %r", action, exc)
            self.message.value = (f"<pre style='color:firebrick'>{html.escape(action)} failed: "
                                  f"{html.escape(str(exc))}</pre>")
        finally:
            self._set_busy(False)
            self.refresh()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a restart begun here has ended and its result is shown.

        Returns:
            False when ``timeout`` seconds passed first.
        """
        follower = self._follower
        if follower is None:
            return True
        follower.join(timeout)
        return not follower.is_alive()

    def _set_busy(self, is_busy: bool) -> None:
        for control in (*self.buttons.values(), self.which):
            control.disabled = is_busy

    def _begin_restart(self) -> None:
        self._set_busy(True)
        try:
            restart = self.model.begin_restart(self.which.value)
        except Exception as exc:
            self.message.value = self._error_html(error_line("restart", exc))
            self._set_busy(False)
            return
        self._show(restart)
        self._follower = threading.Thread(target=self._follow, args=(restart,),
                                          name="mqkit-broker-panel", daemon=True)
        self._follower.start()

    def _follow(self, restart: Restart) -> None:
        # In a thread of its own, so the kernel stays free: it only sets widget values.
        try:
            while not restart.wait(TICK):
                self._show(restart)
            if restart.error is None:
                self.message.value = html.escape(restart.describe())
            else:
                self.message.value = self._error_html(restart.describe())
            self.refresh()
        finally:
            self._set_busy(False)

    def _show(self, restart: Restart) -> None:
        self.message.value = f"<i>{html.escape(restart.describe())}</i>"
        self.table.value = status_html(self._status, restart)

    @staticmethod
    def _error_html(line: str) -> str:
        return f"<span style='color:firebrick'>{html.escape(line)}</span>"
