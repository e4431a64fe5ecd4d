"""What the producer and the consumer share: settings, the client, connecting, stopping.

Everything comes from environment variables, so the same code runs in a container
(compose.yaml sets them) and on a laptop against the broker mqkit starts
(``MQTT_URL=mqtt://user:pass@127.0.0.1:PORT``, which is what ``mqkit up --json`` prints).

=================  ============================================  ===============
variable           meaning                                       default
=================  ============================================  ===============
MQTT_URL           mqtt://user:pass@host:port (wins if set)      (unset)
MQTT_HOST          broker host                                   localhost
MQTT_PORT          broker port                                   1883
MQTT_USERNAME      user name                                     (none)
MQTT_PASSWORD      password                                      (none)
MQTT_TOPIC         topic (producer) or topic filter (consumer)   lecture/demo
MQTT_QOS           0, 1 or 2                                     1
MQTT_CLIENT_ID     client id; random when empty                  (random)
MQTT_CLEAN_SESSION false = the broker keeps our session          true
=================  ============================================  ===============
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

#: CONNACK reasons that retrying cannot fix: wrong credentials, banned, bad client id, ...
REFUSALS = {0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C}


class ConfigError(Exception):
    """An environment variable has a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    """Where the broker is and how to talk to it (see the table above)."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    topic: str
    qos: int
    client_id: str
    clean_session: bool

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read the MQTT_* variables; raises ConfigError with a one-line reason."""
        env = dict(os.environ if env is None else env)
        host = env.get("MQTT_HOST", "localhost")
        port = env.get("MQTT_PORT", "1883")
        username = env.get("MQTT_USERNAME") or None
        password = env.get("MQTT_PASSWORD") or None
        tls = False
        if env.get("MQTT_URL"):
            url = urlsplit(env["MQTT_URL"])
            if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
                raise ConfigError("MQTT_URL must look like mqtt://user:password@host:1883")
            host, tls = url.hostname, url.scheme == "mqtts"
            port = str(url.port or (8883 if tls else 1883))
            username = unquote(url.username) if url.username else None
            password = unquote(url.password) if url.password else None
        qos = env.get("MQTT_QOS", "1")
        if qos not in ("0", "1", "2"):
            raise ConfigError(f"MQTT_QOS must be 0, 1 or 2, not {qos!r}")
        return cls(host=host, port=integer("MQTT_PORT", port), username=username,
                   password=password, tls=tls, topic=env.get("MQTT_TOPIC", "lecture/demo"),
                   qos=int(qos), client_id=env.get("MQTT_CLIENT_ID", ""),
                   clean_session=env.get("MQTT_CLEAN_SESSION", "true").lower() != "false")


def integer(name: str, value: str) -> int:
    """``value`` (of variable ``name``) as a whole number >= 0, or a ConfigError."""
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number >= 0, not {value!r}")
    return int(value)


def seconds(name: str, value: str) -> float:
    """``value`` (of variable ``name``) as a number of seconds >= 0, or a ConfigError."""
    try:
        result = float(value)
    except ValueError:
        result = -1.0
    if not result >= 0:
        raise ConfigError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return result


class Connection:
    """A paho client that connects in the background and reconnects by itself.

    ``connected`` is set while the broker has accepted us. ``stop`` is set when the program
    should end: by a signal, by the caller, or because the broker refused our login (then
    ``refused`` says why; retrying with the same password would not help).
    """

    def __init__(self, settings: Settings, role: str, stop: threading.Event,
                 on_ready=None, manual_ack: bool = False) -> None:
        self.settings, self.stop, self.on_ready = settings, stop, on_ready
        self.log = logging.getLogger(role)
        self.connected = threading.Event()
        self.closing = False
        self.refused: str | None = None
        self.client_id = settings.client_id or f"{role}-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  clean_session=settings.clean_session, manual_ack=manual_ack)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self.client.tls_set()
        # After a lost connection paho waits 1 s, then 2, 4, ... up to 30 s between attempts.
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect

    def start(self) -> None:
        """Connect in paho's network thread; it keeps retrying until stopped."""
        self.log.info("connecting to %s:%s as %s (client id %s)", self.settings.host,
                      self.settings.port, self.settings.username, self.client_id)
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self.client.loop_start()

    def close(self) -> None:
        """Say goodbye to the broker (DISCONNECT) and end the network thread."""
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        if reason_code.is_failure:
            if reason_code.value in REFUSALS:
                self.refused = (f"the broker at {where} refused user {self.settings.username!r}:"
                                f" {reason_code}. Check MQTT_USERNAME and MQTT_PASSWORD"
                                " (or MQTT_URL).")
                self.stop.set()
            else:
                self.log.warning("the broker at %s said %s; retrying", where, reason_code)
            return
        self.log.info("connected to %s (session present: %s)", where, flags.session_present)
        self.connected.set()
        if self.on_ready:
            self.on_ready(client)

    def _on_connect_fail(self, client, userdata) -> None:
        self.log.warning("cannot reach %s:%s; retrying", self.settings.host, self.settings.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self.closing:
            self.log.warning("connection lost (%s); reconnecting", reason_code)


def sleep(stop: threading.Event, duration: float) -> None:
    """Sleep up to ``duration`` seconds, waking early once ``stop`` is set.

    It polls instead of ``stop.wait()``: a signal handler calls ``stop.set()``, which takes the
    event's lock, and must never find that lock held by the very thread it interrupted.
    """
    deadline = time.monotonic() + duration
    while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, 0.1))


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (``docker stop``) and SIGINT (Ctrl-C) set ``stop`` instead of killing us.

    In a container the program is PID 1, which ignores SIGTERM unless it installs a handler:
    without this, ``docker stop`` waits 10 s and then kills it.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())


def run(main) -> None:
    """Run ``main(stop)`` as a program: logging on stderr, signals, exit code, no tracebacks."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        sys.exit(main(stop))
    except ConfigError as exc:
        logging.getLogger("config").error("%s", exc)
        sys.exit(2)
