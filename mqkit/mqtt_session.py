"""Notice when two MQTT clients share a client id, instead of letting them fight.

An MQTT broker keeps one session per client id: when a second client connects with an id
that is in use, the broker disconnects the first ("session taken over"). paho's background
loop then reconnects the first, which throws out the second, whose loop reconnects... Both
programs see a stream of disconnects and each receives only part of the messages.

:func:`watch_session` attaches to a paho 2 client and detects this:

* MQTT 5: the broker's DISCONNECT carries reason code 142, *Session taken over*;
* MQTT 3.1.1 has no reason codes: the broker just closes the socket. A connection that
  is dropped shortly after each successful CONNACK, ``flaps`` times in a row, is the
  signature of a reconnect fight.

Then it stops the client's reconnecting (``disconnect()``), records a
:class:`~mqkit.exceptions.DuplicateClientId` naming the id, logs it, and calls
``on_duplicate`` if given. :meth:`SessionWatch.check` raises that error on the caller's
thread.

Example:
    >>> client = mqtt_connect(endpoints, client_id="sensor-1")    # doctest: +SKIP
    >>> watch = watch_session(client)                               # doctest: +SKIP
    >>> watch.check()   # raises DuplicateClientId once another sensor-1 took over
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from mqkit.exceptions import DuplicateClientId

log = logging.getLogger(__name__)

#: MQTT 5 reason code of a DISCONNECT sent because another client took the session.
SESSION_TAKEN_OVER = 142


class SessionWatch:
    """Watches one paho client for a duplicate client id; see :func:`watch_session`.

    Attributes:
        client_id: the watched client's id.
        detected: set once a duplicate was detected.
        error: the :class:`~mqkit.exceptions.DuplicateClientId`, once detected.
        disconnects: unexpected disconnects seen so far.
    """

    def __init__(self, client: Any, *, window: float, flaps: int,
                 on_duplicate: Callable[[DuplicateClientId], None] | None) -> None:
        self.client = client
        self.client_id = client._client_id.decode() if isinstance(
            client._client_id, bytes) else str(client._client_id)
        self.window = window
        self.flaps = flaps
        self.on_duplicate = on_duplicate
        self.detected = threading.Event()
        self.error: DuplicateClientId | None = None
        self.disconnects = 0
        self._quick_drops = 0
        self._connected_at: float | None = time.monotonic() if client.is_connected() else None
        self._user_on_connect = client.on_connect
        self._user_on_disconnect = client.on_disconnect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if not getattr(reason_code, "is_failure", False):
            self._connected_at = time.monotonic()
        if self._user_on_connect is not None:
            self._user_on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        value = getattr(reason_code, "value", reason_code)
        if value != 0:  # 0: the client itself asked to disconnect
            self.disconnects += 1
            connected_at, self._connected_at = self._connected_at, None
            quick = connected_at is not None and time.monotonic() - connected_at <= self.window
            self._quick_drops = self._quick_drops + 1 if quick else 0
            if value == SESSION_TAKEN_OVER:
                self._report("the broker said: Session taken over (MQTT 5 reason 142)")
            elif self._quick_drops >= self.flaps:
                self._report(f"the broker dropped the connection {self._quick_drops} times, "
                             f"each within {self.window:g} s of a successful CONNACK")
        if self._user_on_disconnect is not None:
            self._user_on_disconnect(client, userdata, flags, reason_code, properties)

    def _report(self, seen: str) -> None:
        if self.detected.is_set():
            return
        self.error = DuplicateClientId(
            f"Another MQTT client connected with the client id {self.client_id!r}, so the "
            f"broker disconnects this one ({seen}). mqkit stopped this client's reconnecting "
            "to end the fight.", client_id=self.client_id,
            hint="Give every client its own client id (mqtt_client() picks a random one when "
                 "you pass none); stop the other program or a re-run cell's old client "
                 "(mqkit.clients.stop_all()).")
        log.warning("%s", self.error)
        self.detected.set()
        # paho overrides the state disconnect() sets from inside on_disconnect (it marks the
        # connection lost afterwards), so its loop would reconnect: switch that off first.
        self.client._reconnect_on_failure = False
        self.client.disconnect()
        if self.on_duplicate is not None:
            self.on_duplicate(self.error)

    def check(self) -> None:
        """Raise the :class:`~mqkit.exceptions.DuplicateClientId` once one was detected."""
        if self.error is not None:
            raise self.error

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a detection; True when there was one."""
        return self.detected.wait(timeout)

    def detach(self) -> None:
        """Give the client its own callbacks back."""
        self.client.on_connect = self._user_on_connect
        self.client.on_disconnect = self._user_on_disconnect


def watch_session(client: Any, *, window: float = 5.0, flaps: int = 2,
                  on_duplicate: Callable[[DuplicateClientId], None] | None = None,
                  ) -> SessionWatch:
    """Watch a paho 2 client (connected or not) for another client with the same id.

    Args:
        client: a ``paho.mqtt.client.Client`` (callback API version 2), e.g. from
            :func:`mqkit.clients.mqtt_connect`.
        window: seconds after a CONNACK within which a drop counts as a "quick" one
            (MQTT 3.1.1 detection).
        flaps: quick drops in a row that mean a reconnect fight (MQTT 3.1.1).
        on_duplicate: called (on paho's thread) with the error when it is detected.

    Returns:
        The :class:`SessionWatch`; its :meth:`~SessionWatch.check` raises the error.
    """
    return SessionWatch(client, window=window, flaps=flaps, on_duplicate=on_duplicate)
