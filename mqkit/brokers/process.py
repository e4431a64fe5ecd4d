"""The process backend: ``rabbitmq-server`` and ``mosquitto`` as the current user.

For machines without Docker: Binder, lab PCs, CI. Both brokers run on free loopback ports
with their data, logs and pid records in the per-user state directory, so ``mqkit down`` or
a new kernel finds them again. RabbitMQ gets its own node name, Erlang distribution port and
epmd, so it coexists with a system RabbitMQ on the same machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mqkit.brokers.base import (
    Availability,
    Backend,
    BrokerStatus,
    check_broker_name,
)
from mqkit.brokers.ports import LOOPBACK, choose_ports
from mqkit.brokers.readiness import (
    probe_all,
    probe_amqp,
    probe_management,
    probe_mqtt,
    wait_until_ready,
)
from mqkit.brokers.specs import (
    ERL_LOOPBACK_ARGS,
    MOSQUITTO,
    RABBITMQ,
    USERNAME,
    mosquitto_password_line,
    new_password,
    rabbitmq_extra_config,
    render,
)
from mqkit.brokers.state import StateStore
from mqkit.endpoints import Endpoints
from mqkit.exceptions import (
    BackendUnavailable,
    BrokerConnectionError,
    BrokerNotRunning,
    BrokerStartError,
)
from mqkit.urls import amqp_url, http_url, mqtt_url

log = logging.getLogger(__name__)

#: Seconds a broker gets to shut down on SIGTERM before it is killed.
STOP_TIMEOUT = 30.0

# Popen objects of brokers started by this Python process, so they get reaped (no zombies
# that look alive) and do not warn when garbage-collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ProcessBackend(Backend):
    """Run both brokers as plain processes of the current user (root or not)."""

    name = "process"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.store = StateStore(settings.state_dir, self.name)

    # -- what is installed -------------------------------------------------------------

    def _binaries(self) -> dict[str, str | None]:
        server = self.settings.rabbitmq_server
        return {
            "rabbitmq-server": server if os.access(server, os.X_OK) else shutil.which(server),
            "mosquitto": _which(self.settings.mosquitto_binary),
            "epmd": _which("epmd") or _first_existing("/usr/lib/erlang/bin/epmd"),
        }

    def availability(self) -> Availability:
        """Available when rabbitmq-server, mosquitto and epmd exist."""
        missing = [name for name, path in self._binaries().items() if path is None]
        if missing:
            return Availability(
                self.name, False, f"not found: {', '.join(missing)}",
                hint="Install the brokers (Debian/Ubuntu: `apt-get install rabbitmq-server "
                     "mosquitto`), or point MQKIT_RABBITMQ_SERVER / MQKIT_MOSQUITTO_BINARY at "
                     "them; or use Docker.")
        return Availability(self.name, True, "rabbitmq-server and mosquitto found")

    def _require_binaries(self) -> dict[str, str]:
        availability = self.availability()
        if not availability.is_available:
            raise BackendUnavailable(f"The process backend cannot run: {availability.reason}.",
                                     hint=availability.hint)
        return {name: path for name, path in self._binaries().items() if path}

    # -- lifecycle ---------------------------------------------------------------------

    def has_state(self) -> bool:
        """True when a state file records brokers started by this backend."""
        return self.store.file.exists()

    def running(self) -> Endpoints | None:
        """Endpoints of this user's brokers when every process lives and answers."""
        state = self.store.load()
        if not state or self._dead(state):
            return None
        endpoints = self._endpoints(state)
        try:
            probe_all(endpoints, timeout=2.0)
        except BrokerConnectionError:
            return None
        return endpoints

    def start(self) -> Endpoints:
        """Start both brokers, or reuse (and revive) the ones this user already has."""
        state = self.store.load()
        if state and not self._dead(state):
            endpoints = self.running()
            if endpoints:
                return endpoints
        if state:
            return self._revive(state, self._dead(state))
        return self._start_fresh()

    def _start_fresh(self) -> Endpoints:
        binaries = self._require_binaries()
        self.store.clear()
        requested = {"amqp": self.settings.amqp_port,
                     "management": self.settings.management_port,
                     "mqtt": self.settings.mqtt_port, "dist": 0, "epmd": 0}
        state: dict[str, Any] = {
            "backend": self.name,
            "username": USERNAME,
            "password": new_password(),
            "ports": choose_ports(requested),
            "nodename": f"mqkit-{os.getpid()}-{int(time.time()) % 100000}@localhost",
            "binaries": binaries,
            "pids": {},
        }
        self._write_configs(state)
        try:
            for broker in ("epmd", "rabbitmq", "mosquitto"):
                state["pids"][broker] = self._launch(broker, state)
                self.store.save(state)
            self._wait_ready(state, ("mosquitto", "rabbitmq"))
        except BaseException:
            self._terminate_all(state)
            self.store.file.unlink(missing_ok=True)
            raise
        return self._endpoints(state)

    def _revive(self, state: dict[str, Any], dead: list[str]) -> Endpoints:
        """Start the dead brokers again with their data, ports and credentials."""
        log.info("reviving %s from %s", ", ".join(dead), self.store.dir)
        for broker in dead:  # epmd first: RabbitMQ registers with it
            state["pids"][broker] = self._launch(broker, state)
            self.store.save(state)
        self._wait_ready(state, tuple(b for b in ("mosquitto", "rabbitmq") if b in dead))
        return self._endpoints(state)

    def stop(self) -> list[str]:
        """Stop the brokers and epmd, then remove their data, logs and credentials."""
        state = self.store.load()
        stopped: list[str] = []
        if state:
            stopped = self._terminate_all(state)
        self.store.clear()
        return stopped

    def restart(self, broker: str = "all") -> Endpoints:
        """Stop and start one broker or both; durable data, ports and credentials stay."""
        state = self._require_state()
        brokers = check_broker_name(broker, allow_all=True)
        for name in brokers:
            _terminate(state["pids"].get(name), self._marker(name, state))
        if "epmd" in self._dead(state):
            state["pids"]["epmd"] = self._launch("epmd", state)
        for name in brokers:
            state["pids"][name] = self._launch(name, state)
            self.store.save(state)
        self._wait_ready(state, brokers)
        return self._endpoints(state)

    def kill(self, broker: str) -> None:
        """SIGKILL one broker, as a crash would; ``restart`` or ``start`` brings it back."""
        state = self._require_state()
        (name,) = check_broker_name(broker)
        pid = state["pids"].get(name)
        if not _alive(pid, self._marker(name, state)):
            raise BrokerNotRunning(f"{name} is not running (pid {pid}).",
                                   hint="Start it with mqkit.start_brokers() or `mqkit up`.")
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)

    def status(self) -> list[BrokerStatus]:
        """Whether each broker process lives, with its pid and port."""
        state = self.store.load()
        if not state:
            return [BrokerStatus(b, False, "not started") for b in ("rabbitmq", "mosquitto")]
        ports = state["ports"]
        result = []
        for name, port in (("rabbitmq", ports["amqp"]), ("mosquitto", ports["mqtt"])):
            pid = state["pids"].get(name)
            alive = _alive(pid, self._marker(name, state))
            detail = f"pid {pid}, port {port}" if alive else f"not running (was pid {pid})"
            result.append(BrokerStatus(name, alive, detail))
        return result

    def logs(self, broker: str, lines: int = 20) -> str:
        """The last lines of a broker's log files."""
        state = self.store.load() or {}
        (name,) = check_broker_name(broker)
        folder = self.store.dir / name
        files = [folder / "stdout.log"]
        if name == "rabbitmq" and state.get("nodename"):
            files.insert(0, folder / "log" / f"{state['nodename']}.log")
        else:
            files.insert(0, folder / "mosquitto.log")
        return "\n".join(filter(None, (_tail(path, lines) for path in files)))

    # -- internals ---------------------------------------------------------------------

    def _require_state(self) -> dict[str, Any]:
        state = self.store.load()
        if not state:
            raise BrokerNotRunning("The process backend has no brokers running.",
                                   hint="Start them with mqkit.start_brokers() or `mqkit up`.")
        return state

    def _endpoints(self, state: dict[str, Any]) -> Endpoints:
        user, password, ports = state["username"], state["password"], state["ports"]
        return Endpoints(
            amqp_url=amqp_url(LOOPBACK, ports["amqp"], user, password),
            mqtt_url=mqtt_url(LOOPBACK, ports["mqtt"], user, password),
            management_url=http_url(LOOPBACK, ports["management"], user, password),
            backend=self.name,
        )

    def _marker(self, broker: str, state: dict[str, Any]) -> str:
        """A string in the process's command line that proves the pid is still ours."""
        if broker == "epmd":
            return str(state["ports"]["epmd"])
        if broker == "rabbitmq":
            return f"-home {self.store.dir / 'rabbitmq' / 'home'}"
        return str(self.store.dir / "mosquitto" / "mosquitto.conf")

    def _dead(self, state: dict[str, Any]) -> list[str]:
        return [name for name in ("epmd", "rabbitmq", "mosquitto")
                if not _alive(state.get("pids", {}).get(name), self._marker(name, state))]

    def _write_configs(self, state: dict[str, Any]) -> None:
        ports, user, password = state["ports"], state["username"], state["password"]
        rabbit = self.store.ensure_dir("rabbitmq")
        for sub in ("mnesia", "log", "home"):
            self.store.ensure_dir("rabbitmq", sub)
        self.store.write_private(rabbit / "rabbitmq.conf", render(
            RABBITMQ.template, bind=LOOPBACK, amqp_port=ports["amqp"],
            management_port=ports["management"], memory=self.settings.rabbitmq_memory,
            extra=rabbitmq_extra_config(user, password)))
        self.store.write_private(rabbit / "enabled_plugins", "[rabbitmq_management].\n")
        mosq = self.store.ensure_dir("mosquitto")
        self.store.ensure_dir("mosquitto", "data")
        passwd = self.store.write_private(mosq / "passwd",
                                          mosquitto_password_line(user, password))
        # Run as root, mosquitto drops to user "mosquitto", which cannot read this file.
        extra = "user root\n" if os.geteuid() == 0 else ""
        self.store.write_private(mosq / "mosquitto.conf", render(
            MOSQUITTO.template, bind=LOOPBACK, mqtt_port=ports["mqtt"],
            password_file=passwd, data_dir=mosq / "data",
            log_dest=f"file {mosq / 'mosquitto.log'}", extra=extra))

    def _command(self, broker: str, state: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
        binaries, ports = state["binaries"], state["ports"]
        env = dict(os.environ)
        if broker == "epmd":
            return [binaries["epmd"], "-address", LOOPBACK, "-port", str(ports["epmd"])], env
        if broker == "mosquitto":
            conf = self.store.dir / "mosquitto" / "mosquitto.conf"
            return [binaries["mosquitto"], "-c", str(conf)], env
        rabbit = self.store.dir / "rabbitmq"
        env.update({
            "HOME": str(rabbit / "home"),  # the Erlang cookie goes here, not in the user's HOME
            "RABBITMQ_NODENAME": state["nodename"],
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(ports["amqp"]),
            "RABBITMQ_DIST_PORT": str(ports["dist"]),
            "RABBITMQ_MNESIA_BASE": str(rabbit / "mnesia"),
            "RABBITMQ_LOG_BASE": str(rabbit / "log"),
            "RABBITMQ_CONFIG_FILE": str(rabbit / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(rabbit / "enabled_plugins"),
            # Keep /etc/rabbitmq (a system broker's files) out of this node.
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(rabbit / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(rabbit / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_LOOPBACK_ARGS,
            # Makes the script exec the Erlang VM: the pid mqkit records is the broker's,
            # and SIGTERM reaches it directly (the VM then shuts down gracefully).
            "RUNNING_UNDER_SYSTEMD": "true",
            "ERL_EPMD_PORT": str(ports["epmd"]),
            "ERL_EPMD_ADDRESS": LOOPBACK,
        })
        return [binaries["rabbitmq-server"]], env

    def _launch(self, broker: str, state: dict[str, Any]) -> int:
        for pid in list(_CHILDREN):  # reap brokers that ended since (no zombies linger)
            _reap(pid)
        command, env = self._command(broker, state)
        folder = self.store.ensure_dir("rabbitmq" if broker == "epmd" else broker)
        stdout_name = "epmd.log" if broker == "epmd" else "stdout.log"
        with open(folder / stdout_name, "ab") as out:
            child = subprocess.Popen(command, env=env, cwd=folder, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _CHILDREN[child.pid] = child
        log.info("started %s (pid %s): %s", broker, child.pid, " ".join(command))
        if broker == "epmd":
            _wait_listening(state["ports"]["epmd"], child, 5.0)
        return child.pid

    def _wait_ready(self, state: dict[str, Any], brokers: tuple[str, ...]) -> None:
        endpoints = self._endpoints(state)
        deadline = time.monotonic() + self.settings.startup_timeout
        probes: dict[str, list[Callable[[], None]]] = {
            "mosquitto": [lambda: probe_mqtt(endpoints.mqtt)],
            "rabbitmq": [lambda: probe_amqp(endpoints.amqp),
                         lambda: probe_management(endpoints.management)],  # type: ignore[arg-type]
        }
        for broker in brokers:
            title = RABBITMQ.title if broker == "rabbitmq" else MOSQUITTO.title
            for probe in probes[broker]:
                wait_until_ready(
                    probe, what=title, backend=self.name,
                    timeout=max(0.1, deadline - time.monotonic()),
                    exited=lambda b=broker: _exit_description(state["pids"].get(b)),
                    logs=lambda b=broker: self.logs(b))

    def _terminate_all(self, state: dict[str, Any]) -> list[str]:
        stopped = []
        for name in ("rabbitmq", "mosquitto", "epmd"):
            if _terminate(state.get("pids", {}).get(name), self._marker(name, state)):
                stopped.append(name)
        return stopped


# -- process helpers -------------------------------------------------------------------


def _which(name: str) -> str | None:
    return name if os.path.isabs(name) and os.access(name, os.X_OK) else (
        shutil.which(name) or _first_existing(f"/usr/sbin/{name}"))


def _first_existing(*paths: str) -> str | None:
    return next((p for p in paths if os.access(p, os.X_OK)), None)


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)


def _alive(pid: int | None, marker: str) -> bool:
    """True when ``pid`` runs and (on Linux) is still our process.

    A broker this Python process started is asked through its ``Popen`` (which also reaps
    it). Any other pid is checked in ``/proc``: a zombie counts as gone, and the command line
    must contain ``marker`` (the pid may have been reused by an unrelated process).
    """
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        # Not /proc: a multi-threaded VM shows "Z" while its other threads still exit.
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False  # gone, or someone else's process reusing the pid
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except (OSError, IndexError):
            return False
    return True


def _exit_description(pid: int | None) -> str | None:
    if pid is None:
        return "it was never started"
    child = _CHILDREN.get(pid)
    if child is not None:
        code = child.poll()
        return None if code is None else f"pid {pid} exited with code {code}"
    return None if _alive(pid, "") else f"pid {pid} is gone"


def _signal_group(pid: int, sig: int) -> None:
    # Brokers run in their own session, so the group holds the broker and its helpers.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, ""):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _terminate(pid: int | None, marker: str) -> bool:
    """SIGTERM a broker's process group, SIGKILL it after STOP_TIMEOUT; True if it ran."""
    if not _alive(pid, marker):
        return False
    assert pid is not None
    _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(pid, STOP_TIMEOUT):
        log.warning("pid %s ignored SIGTERM for %.0f s; killing it", pid, STOP_TIMEOUT)
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)
    return True


def _wait_listening(port: int, child: subprocess.Popen[bytes], timeout: float) -> None:
    from mqkit.brokers.ports import is_listening

    deadline = time.monotonic() + timeout
    while not is_listening(port):
        if child.poll() is not None or time.monotonic() > deadline:
            raise BrokerStartError(
                f"epmd (Erlang's port mapper) did not start on 127.0.0.1:{port} "
                f"(exit code {child.poll()}).",
                hint="Check that Erlang is installed (`epmd -help`).")
        time.sleep(0.05)


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
