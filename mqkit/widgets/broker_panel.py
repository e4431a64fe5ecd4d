"""BrokerPanel: the state of both brokers, with start, stop and restart buttons.

Example:
    >>> BrokerPanel()   # doctest: +SKIP
"""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as widgets

from mqkit.brokers import launcher

log = logging.getLogger(__name__)


class BrokerPanelModel:
    """Start, stop, restart and inspect the brokers through :mod:`mqkit.brokers.launcher`.

    Args:
        backend: ``auto`` (default), ``docker``, ``process`` or ``external``.
        **settings: any :class:`~mqkit.config.Settings` field (e.g. ``state_dir``).
    """

    def __init__(self, backend: str | None = None, **settings: Any) -> None:
        self.backend = backend
        self.settings = settings

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


def status_html(status: dict[str, Any]) -> str:
    """An HTML table of :func:`mqkit.broker_status`'s answer (passwords left out)."""
    if not status.get("brokers"):
        return "<p>No brokers are running. Press <b>Start</b>.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(s.broker)}</td>"
        f"<td style='color:{'green' if s.is_running else 'firebrick'}'>"
        f"{'running' if s.is_running else 'stopped'}</td>"
        f"<td>{html.escape(s.detail)}</td></tr>" for s in status["brokers"])
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
            f"<table><tr><th>broker</th><th>state</th><th>detail</th></tr>{rows}{urls}"
            "</table>")


class BrokerPanel(widgets.VBox):
    """Broker status with Start, Stop, Restart and Refresh buttons.

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
        super().__init__([self.table, widgets.HBox([*self.buttons.values(), self.which]),
                          self.message])
        self.refresh()

    def refresh(self) -> None:
        """Read the status again."""
        try:
            self.table.value = status_html(self.model.status())
        except Exception as exc:
            self.table.value = f"<p>status unknown: {html.escape(str(exc))}</p>"

    def run(self, action: str) -> None:
        """Do ``start``, ``stop``, ``restart`` or ``refresh``; errors are shown, not raised."""
        for button in self.buttons.values():
            button.disabled = True
        self.message.value = f"<i>{action}…</i>"
        try:
            if action == "start":
                self.model.start()
                done = "started"
            elif action == "stop":
                stopped = self.model.stop()
                done = f"stopped {', '.join(stopped) or 'nothing'}"
            elif action == "restart":
                self.model.restart(self.which.value)
                done = f"restarted {self.which.value}"
            else:
                done = ""
            self.message.value = html.escape(done)
        except Exception as exc:
            log.info("broker panel %s failed: %r", action, exc)
            self.message.value = (f"<pre style='color:firebrick'>{html.escape(action)} failed: "
                                  f"{html.escape(str(exc))}</pre>")
        finally:
            for button in self.buttons.values():
                button.disabled = False
            self.refresh()
