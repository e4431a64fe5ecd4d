"""One student's own Mosquitto, run by mqkit on the classroom server (the classroom backend).

Why a process per student and not one Mosquitto with a namespace per student: on Mosquitto
2.0.11 client ids are global across listeners (the same client id on a second listener
closes the first one's connection), a listener's ``mount_point`` shows up in the topics its
subscribers receive (``students/ann/sensors/x`` for a publish to ``sensors/x``), and the
dynamic-security plugin restricts topics without rewriting them. A Mosquitto of their own
gives a student the topics, client ids, retained messages and ``$SYS`` tree a private broker
has, so the MQTT labs run unchanged; it costs a few MiB of memory and starts in well under a
second.

Each one is the process backend (:class:`~mqkit.brokers.process.ProcessBackend`, the code
that runs every broker mqkit starts) with only the Mosquitto spec, its state, data and logs in
``DIR/mosquitto/<student>/``. The spec is the stock one plus the classroom's limits and
listen address. Its state record keeps port and password, so :meth:`StudentMosquitto.start`
after a reboot brings it back as the student's card describes it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
from pathlib import Path

from mqkit.brokers.ports import free_port, is_port_free
from mqkit.brokers.process import ProcessBackend
from mqkit.brokers.specs import LOOPBACK, MOSQUITTO, BrokerSpec, Launch
from mqkit.classroom.limits import Limits
from mqkit.config import Settings
from mqkit.exceptions import BackendUnavailable, ConfigError, PortInUseError

log = logging.getLogger(__name__)

#: Listen on loopback only, or on every interface (students on other machines).
LISTEN_ADDRESSES = (LOOPBACK, "0.0.0.0")

#: Seconds one student's Mosquitto gets to answer an authenticated CONNECT.
START_TIMEOUT = 15.0


def classroom_spec(limits: Limits, bind: str) -> BrokerSpec:
    """The Mosquitto spec with the classroom's limits and listen address."""
    if bind not in LISTEN_ADDRESSES:
        raise ConfigError(f"A student's Mosquitto cannot listen on {bind!r}.",
                          hint=f"Use one of {', '.join(LISTEN_ADDRESSES)}.")

    def files(launch: Launch) -> dict[str, str]:
        written = MOSQUITTO.files(dataclasses.replace(launch, bind=bind))
        written["mosquitto.conf"] += limits.mosquitto_config()
        return written

    return dataclasses.replace(MOSQUITTO, files=files)


@dataclasses.dataclass
class StudentMosquitto:
    """A student's Mosquitto under ``folder``: start (or revive), status, stop, remove.

    Args:
        folder: its own folder (``DIR/mosquitto/<student>``).
        username: the one MQTT user (the student's RabbitMQ user name).
        limits: the classroom's limits.
        bind: ``127.0.0.1`` or ``0.0.0.0``.
        port: the port of a fresh start (0: any free one); a revival keeps its old port.
        binary: the mosquitto executable.
    """

    folder: Path
    username: str
    limits: Limits = dataclasses.field(default_factory=Limits)
    bind: str = LOOPBACK
    port: int = 0
    binary: str = "mosquitto"

    @property
    def backend(self) -> ProcessBackend:
        """The process backend that runs it (built when asked: it holds no process handle)."""
        settings = Settings.from_env(env={}, backend="process", state_dir=self.folder,
                                     mosquitto_binary=self.binary, mqtt_port=self.port,
                                     startup_timeout=START_TIMEOUT)
        return ProcessBackend(settings, (classroom_spec(self.limits, self.bind),),
                              username=self.username)

    def start(self) -> tuple[int, str]:
        """Start it, or bring it back with its port, password and retained messages.

        Returns:
            ``(port, password)`` of its one MQTT user.

        Raises:
            BackendUnavailable: the mosquitto binary is missing.
            BrokerStartError: it did not answer in time, or its port is taken.
        """
        address = self.backend.start().mqtt
        assert address.port
        assert address.password
        return address.port, address.password

    def is_running(self) -> bool:
        """True while its process runs (a record and a live process, nothing probed)."""
        return any(status.is_running for status in self.backend.status())

    def stop(self) -> bool:
        """Stop the process and keep its data, port and password; True if it ran."""
        backend = self.backend
        state = backend.store.load()
        return state is not None and backend.halt(backend.specs["mosquitto"], state)

    def remove(self) -> None:
        """Stop it and delete its folder (data, logs, password file)."""
        self.backend.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def check_binary(binary: str = "mosquitto") -> None:
    """Raise before anything is created when Mosquitto cannot be run here.

    Raises:
        BackendUnavailable: the mosquitto binary is missing.
    """
    settings = Settings.from_env(env={}, backend="process", mosquitto_binary=binary)
    availability = ProcessBackend(settings, (MOSQUITTO,)).availability()
    if not availability.is_available:
        raise BackendUnavailable(
            f"The classroom runs a Mosquitto per student, and it cannot run here: "
            f"{availability.reason}.", hint=availability.hint)


class PortPool:
    """Hands out MQTT ports for new students: free now, and never one a student already has.

    A stopped student's Mosquitto does not hold its port, so a free-port check alone could
    give it away; the pool also skips every port of the classroom's record. With a range
    (for a firewall that opens only those ports) the ports come from it in order.

    Args:
        taken: ports the classroom's students already have.
        bind: the address the ports are checked on.
        first, last: an inclusive port range, or ``None`` for any free port.
    """

    def __init__(self, taken: set[int], bind: str = LOOPBACK, first: int | None = None,
                 last: int | None = None) -> None:
        self.taken = set(taken)
        self.bind = bind
        self.range = None if first is None or last is None else (first, last)
        self._lock = threading.Lock()

    def take(self) -> int:
        """A port for one new student.

        Raises:
            PortInUseError: the range has no free port left.
        """
        with self._lock:
            if self.range is None:
                port = free_port(self.bind)
                while port in self.taken:
                    port = free_port(self.bind)
            else:
                first, last = self.range
                port = next((p for p in range(first, last + 1)
                             if p not in self.taken and is_port_free(p, self.bind)), 0)
                if not port:
                    raise PortInUseError(
                        f"No free MQTT port left in {first}-{last} ({len(self.taken)} taken "
                        "by students of this classroom).",
                        hint="Give a wider --mqtt-ports range, or remove students first.")
            self.taken.add(port)
            return port
