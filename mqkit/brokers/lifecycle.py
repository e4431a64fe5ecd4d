"""One lifecycle for every backend that runs brokers itself: reuse, revive, fresh start.

:class:`ManagedBackend` owns what the docker and process backends have in common — the state
record, reusing brokers that answer, reviving dead ones with their data, ports and
credentials, a fresh start that cleans up after itself when it fails, restart, kill, status
and waiting until every readiness probe passes. It works over any set of
:class:`~mqkit.brokers.specs.BrokerSpec` records (both brokers for a lab; one Mosquitto for a
graded submission). A backend supplies only:

* :meth:`~ManagedBackend.prepare`: what a fresh start needs (images, binaries);
* :meth:`~ManagedBackend.launch`: start one broker (again, keeping its data);
* :meth:`~ManagedBackend.is_alive`: whether it runs;
* :meth:`~ManagedBackend.halt`: stop (or kill) it, keeping its data;
* :meth:`~ManagedBackend.broker_logs`: its last log lines.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence

from mqkit.brokers.base import Availability, Backend, BrokerStatus, check_broker_name
from mqkit.brokers.ports import choose_ports, is_listening
from mqkit.brokers.progress import report
from mqkit.brokers.readiness import probe_address, wait_until_ready
from mqkit.brokers.specs import LOOPBACK, MOSQUITTO, RABBITMQ, USERNAME, BrokerSpec, new_password
from mqkit.brokers.state import BrokerState, StateStore
from mqkit.config import Settings
from mqkit.endpoints import Endpoints
from mqkit.exceptions import BrokerConnectionError, BrokerNotRunning
from mqkit.urls import BrokerAddress, amqp_url, http_url, mqtt_url

log = logging.getLogger(__name__)

_URLS: dict[str, Callable[[str, int, str, str], str]] = {
    "amqp": amqp_url, "http": http_url, "mqtt": mqtt_url}


class ManagedBackend(Backend):
    """A backend whose brokers mqkit starts, finds again, restarts and stops.

    Args:
        settings: resolved settings.
        brokers: the brokers to run (default: RabbitMQ and Mosquitto).
        username: the brokers' user (default ``mqkit``); the password is random.
    """

    def __init__(self, settings: Settings, brokers: Sequence[BrokerSpec] = (RABBITMQ, MOSQUITTO),
                 *, username: str = USERNAME) -> None:
        super().__init__(settings)
        self.specs: dict[str, BrokerSpec] = {spec.name: spec for spec in brokers}
        self.username = username
        self.store = StateStore(settings.state_dir, self.name)

    # -- what a backend supplies ---------------------------------------------------------

    @abstractmethod
    def availability(self) -> Availability:
        """Whether this backend can run here, judged by what a launch needs."""

    @abstractmethod
    def prepare(self, state: BrokerState) -> None:
        """Get ready for a fresh start (images, binaries); fill the backend's state fields."""

    @abstractmethod
    def launch(self, spec: BrokerSpec, state: BrokerState) -> None:
        """Start one broker, or start it again with the data it had."""

    @abstractmethod
    def is_alive(self, spec: BrokerSpec, state: BrokerState) -> bool:
        """True while the broker's process or container runs."""

    @abstractmethod
    def halt(self, spec: BrokerSpec, state: BrokerState, *, kill: bool = False) -> bool:
        """Stop one broker (SIGKILL with ``kill``), keeping its data; True when it ran."""

    @abstractmethod
    def broker_logs(self, spec: BrokerSpec, state: BrokerState, lines: int) -> str:
        """The broker's last ``lines`` log lines ('' when there are none)."""

    def shares_host_network(self, state: BrokerState | None) -> bool:
        """True when the brokers share the host's ports (Erlang's own ports then too).

        Args:
            state: the running brokers' record, or ``None`` before a fresh start.
        """
        return True

    def exit_reason(self, spec: BrokerSpec, state: BrokerState) -> str | None:
        """Why the broker is gone while mqkit waits for it, or ``None`` while it runs."""
        return None if self.is_alive(spec, state) else f"{spec.title} is no longer running"

    def describe(self, spec: BrokerSpec, state: BrokerState, is_running: bool) -> str:
        """One line for ``mqkit status``."""
        return "running" if is_running else "not running"

    def discard(self, state: BrokerState | None) -> list[str]:
        """Stop everything this backend started (``None``: the state record was lost)."""
        if state is None:
            return []
        return [spec.name for spec in reversed(self._specs(state)) if self.halt(spec, state)]

    def orphans(self) -> list[str]:
        """Brokers of this state directory that run without a state record (a lost file)."""
        return []

    def forget_secrets(self, state: BrokerState) -> None:
        """After a failed launch: remove files that hold credentials; the logs stay."""

    # -- the lifecycle ---------------------------------------------------------------------

    def has_state(self) -> bool:
        """True when a state file records brokers of this backend, or some run without one.

        ``mqkit down`` must find brokers whose state file was lost or overwritten too.
        """
        return self.store.file.exists() or bool(self.orphans())

    def running(self) -> Endpoints | None:
        """Endpoints of this backend's brokers when every one runs and answers, else ``None``."""
        state = self.store.load()
        if state is None or self._dead(state):
            return None
        try:
            self._probe_once(state, timeout=2.0)
        except BrokerConnectionError:
            return None
        return self.endpoints(state)

    def start(self) -> Endpoints:
        """Start the brokers, or reuse (and revive) the ones this state directory has.

        Callers in other processes (another notebook, ``mqkit up``) wait for each other: only
        the first launches, the others get its brokers.
        """
        def waiting() -> None:
            report("waiting for another start of these brokers (another notebook, or "
                   "`mqkit lab` starting them in the background)…")

        with self.store.locked(on_wait=waiting):
            return self._start()

    def _start(self) -> Endpoints:
        state = self.store.load()
        if state is None:
            return self._start_fresh()
        dead = self._dead(state)
        if not dead:
            endpoints = self.running()
            if endpoints is not None:
                return endpoints
        else:
            report(f"starting {', '.join(s.title for s in dead)} again "
                   f"({self.name} backend)…")
            self._launch(state, dead)
        self._wait_ready(state, self._specs(state))
        return self.endpoints(state)

    def stop(self) -> list[str]:
        """Stop the brokers and remove their data, logs and credentials.

        Brokers of this state directory that run without a state record are stopped too.
        """
        with self.store.locked():
            try:
                stopped = self.discard(self.store.load())
                return stopped + [name for name in self.discard(None) if name not in stopped]
            finally:
                self.store.clear()

    def restart(self, broker: str = "all") -> Endpoints:
        """Stop and start one broker or both; durable data, ports and credentials stay."""
        with self.store.locked():
            return self._restart(broker)

    def _restart(self, broker: str) -> Endpoints:
        state = self._require_state()
        chosen = [self.specs[name] for name in check_broker_name(broker, allow_all=True)
                  if name in self.specs]
        for spec in chosen:
            self.halt(spec, state)
        self._launch(state, chosen)
        self._wait_ready(state, chosen)
        return self.endpoints(state)

    def kill(self, broker: str) -> None:
        """Kill one broker abruptly (SIGKILL), as a crash would; ``start`` revives it."""
        state = self._require_state()
        (name,) = check_broker_name(broker)
        spec = self.specs[name]
        if not self.is_alive(spec, state):
            raise BrokerNotRunning(f"{spec.title} is not running ({self.name} backend).",
                                   hint="Start it with mqkit.start_brokers() or `mqkit up`.")
        self.halt(spec, state, kill=True)

    def status(self) -> list[BrokerStatus]:
        """Whether each broker runs, with a detail line."""
        state = self.store.load()
        if state is None:
            return [BrokerStatus(name, False, "not started") for name in self.specs]
        result = []
        for spec in self._specs(state):
            alive = self.is_alive(spec, state)
            result.append(BrokerStatus(spec.name, alive, self.describe(spec, state, alive)))
        return result

    def logs(self, broker: str, lines: int = 20) -> str:
        """The last ``lines`` log lines of one broker."""
        (name,) = check_broker_name(broker)
        state = self.store.load()
        if name not in self.specs:
            return ""
        if state is None:  # a failed launch leaves its logs, not its record
            return self.leftover_logs(self.specs[name], lines)
        return self.broker_logs(self.specs[name], state, lines)

    def leftover_logs(self, spec: BrokerSpec, lines: int) -> str:
        """The last log lines a broker left without a state record ('' when none)."""
        return ""

    # -- addresses -------------------------------------------------------------------------

    def address(self, state: BrokerState, port: str) -> BrokerAddress:
        """The client address of one port of the brokers (with credentials)."""
        scheme = next(p.scheme for spec in self._specs(state) for p in spec.ports
                      if p.name == port)
        assert scheme is not None, f"{port} is not a client port"
        return BrokerAddress(scheme, LOOPBACK, state.ports[port], state.username,
                             state.password, "/" if scheme == "amqp" else "")

    def url(self, state: BrokerState, port: str) -> str:
        """The URL of one client port (``amqp``, ``management``, ``mqtt``) with credentials."""
        address = self.address(state, port)
        return _URLS[address.scheme](LOOPBACK, address.port, state.username, state.password)

    def endpoints(self, state: BrokerState) -> Endpoints:
        """The endpoints of the brokers in ``state`` ('' for a broker not in the set)."""
        def url(port: str) -> str:
            return self.url(state, port) if port in state.ports else ""

        return Endpoints(amqp_url=url("amqp"), mqtt_url=url("mqtt"),
                         management_url=url("management"), backend=self.name)

    # -- internals -------------------------------------------------------------------------

    def _specs(self, state: BrokerState) -> list[BrokerSpec]:
        return [self.specs[name] for name in state.brokers if name in self.specs]

    def _dead(self, state: BrokerState) -> list[BrokerSpec]:
        return [spec for spec in self._specs(state) if not self.is_alive(spec, state)]

    def _require_state(self) -> BrokerState:
        state = self.store.load()
        if state is None:
            raise BrokerNotRunning(f"The {self.name} backend has no brokers running.",
                                   hint="Start them with mqkit.start_brokers() or `mqkit up`.")
        return state

    def _start_fresh(self) -> Endpoints:
        self.discard(None)
        self.store.clear()
        host_network = self.shares_host_network(None)
        requested = {}
        for spec in self.specs.values():
            for port in spec.ports:
                if host_network or port.container is not None:
                    fixed = getattr(self.settings, port.setting) if port.setting else 0
                    requested[port.name] = int(fixed or 0)
        state = BrokerState(backend=self.name, username=self.username, password=new_password(),
                            ports=choose_ports(requested), brokers=list(self.specs))
        report(f"starting {', '.join(s.title for s in self.specs.values())} "
               f"({self.name} backend)…")
        self.prepare(state)
        self.store.save(state)
        try:
            self._launch(state, self._specs(state))
            self._wait_ready(state, self._specs(state))
        except BaseException:
            # Nothing of a failed launch stays running or holds its password; its logs stay
            # for `mqkit logs`, which the error's hint names.
            self.discard(state)
            self.discard(None)
            self.forget_secrets(state)
            self.store.file.unlink(missing_ok=True)
            raise
        return self.endpoints(state)

    def _launch(self, state: BrokerState, specs: Sequence[BrokerSpec]) -> None:
        for spec in specs:
            self.launch(spec, state)
            self.store.save(state)

    def _probe_once(self, state: BrokerState, timeout: float) -> None:
        for spec in self._specs(state):
            for port in spec.probes:
                probe_address(self.address(state, port), timeout)

    def _wait_ready(self, state: BrokerState, specs: Sequence[BrokerSpec]) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout
        # The quick ones first, so the notebook shows "Mosquitto ready" while RabbitMQ boots.
        for spec in sorted(specs, key=lambda s: len(s.probes)):
            for port in spec.probes:
                address = self.address(state, port)
                is_open = (lambda a=address: is_listening(a.port, a.host, timeout=0.5)
                           ) if port in spec.watched else None
                wait_until_ready(
                    lambda a=address: probe_address(a, serving=True),
                    what=spec.title, backend=self.name,
                    timeout=max(0.1, deadline - time.monotonic()),
                    exited=lambda s=spec: self.exit_reason(s, state),
                    logs=lambda s=spec: self.broker_logs(s, state, 20),
                    is_open=is_open)
            report(f"{spec.title} ready")
