"""The process backend: ``rabbitmq-server`` and ``mosquitto`` as the current user.

For machines without Docker: Binder, lab PCs, CI. Both brokers run on free loopback ports
with their data, logs and pid records in the per-user state directory, so ``mqkit down`` or
a new kernel finds them again. RabbitMQ gets its own node name, Erlang distribution port and
epmd, so it coexists with a system RabbitMQ on the same machine. What to run comes from the
brokers' specs (:mod:`mqkit.brokers.specs`); the lifecycle from
:class:`~mqkit.brokers.lifecycle.ManagedBackend`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from mqkit.brokers.base import Availability
from mqkit.brokers.lifecycle import ManagedBackend
from mqkit.brokers.ports import is_listening
from mqkit.brokers.specs import LOOPBACK, BrokerSpec, Command, Launch
from mqkit.brokers.state import BrokerState
from mqkit.exceptions import BackendUnavailable, BrokerStartError

log = logging.getLogger(__name__)

#: Seconds a broker gets to shut down on SIGTERM before it is killed.
STOP_TIMEOUT = 30.0

# Popen objects of brokers started by this Python process, so they get reaped (no zombies
# that look alive) and do not warn when garbage-collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ProcessBackend(ManagedBackend):
    """Run the brokers as plain processes of the current user (root or not)."""

    name = "process"

    # -- what is installed ---------------------------------------------------------------

    def _binaries(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for spec in self.specs.values():
            for binary, setting in spec.binaries.items():
                found[binary] = _which(getattr(self.settings, setting) if setting else binary)
        return found

    def availability(self) -> Availability:
        """Available when every broker's executables exist and can be run."""
        missing = [name for name, path in self._binaries().items() if path is None]
        if missing:
            return Availability(
                self.name, False, f"not found: {', '.join(missing)}",
                hint="Install the brokers (Debian/Ubuntu: `apt-get install rabbitmq-server "
                     "mosquitto`), or point MQKIT_RABBITMQ_SERVER / MQKIT_MOSQUITTO_BINARY at "
                     "them; or use Docker.")
        names = " and ".join(next(iter(spec.binaries)) for spec in self.specs.values())
        return Availability(self.name, True, f"{names} found")

    def prepare(self, state: BrokerState) -> None:
        """Resolve the executables and name RabbitMQ's Erlang node."""
        availability = self.availability()
        if not availability.is_available:
            raise BackendUnavailable(f"The process backend cannot run: {availability.reason}.",
                                     hint=availability.hint)
        state.binaries = {name: path for name, path in self._binaries().items() if path}
        state.nodename = f"mqkit-{os.getpid()}-{int(time.time()) % 100000}@localhost"

    # -- one broker --------------------------------------------------------------------------

    def _commands(self, spec: BrokerSpec, state: BrokerState) -> list[Command]:
        return spec.commands(self._launch_context(spec, state), state.binaries)

    def _launch_context(self, spec: BrokerSpec, state: BrokerState) -> Launch:
        folder = self.store.ensure_dir(spec.name)
        return Launch(state, folder, self.settings, in_container=False, bind=LOOPBACK,
                      ports=state.ports)

    def launch(self, spec: BrokerSpec, state: BrokerState) -> None:
        """Write missing configs and start each of the broker's processes that is not running."""
        for pid in list(_CHILDREN):  # reap brokers that ended since (no zombies linger)
            _reap(pid)
        launch = self._launch_context(spec, state)
        for sub in spec.dirs:
            self.store.ensure_dir(spec.name, sub)
        for name, text in spec.files(launch).items():
            # Written once per fresh start: a revived broker keeps the config it had.
            if not (launch.folder / name).exists():
                self.store.write_private(launch.folder / name, text)
        for command in spec.commands(launch, state.binaries):
            if _alive(state.pids.get(command.name), command.marker):
                continue  # epmd survives a broker's restart
            state.pids[command.name] = self._spawn(command, launch.folder, state)

    def _spawn(self, command: Command, folder: Path, state: BrokerState) -> int:
        with open(folder / command.log, "ab") as out:
            child = subprocess.Popen(command.argv, env={**os.environ, **command.env},
                                     cwd=folder, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _CHILDREN[child.pid] = child
        log.info("started %s (pid %s): %s", command.name, child.pid, " ".join(command.argv))
        if command.listens:
            _wait_listening(command.name, state.ports[command.listens], child, 5.0)
        return child.pid

    def is_alive(self, spec: BrokerSpec, state: BrokerState) -> bool:
        """True while every process of the broker runs."""
        return all(_alive(state.pids.get(c.name), c.marker) for c in self._commands(spec, state))

    def halt(self, spec: BrokerSpec, state: BrokerState, *, kill: bool = False) -> bool:
        """SIGTERM (or SIGKILL) the broker's own process; its helpers (epmd) stay."""
        main = self._commands(spec, state)[-1]
        pid = state.pids.get(main.name)
        if not _alive(pid, main.marker):
            return False
        assert pid is not None
        if kill:
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
            return True
        return _terminate(pid, main.marker)

    def _discard_recorded(self, state: BrokerState) -> list[str]:
        stopped = []
        for spec in reversed(self._specs(state)):
            for command in reversed(self._commands(spec, state)):
                if _terminate(state.pids.get(command.name), command.marker):
                    stopped.append(command.name)
        return stopped

    def orphans(self) -> list[str]:
        """Processes running in this state directory without a record (a lost state file)."""
        return [name for _pid, name in self._processes_here()]

    def _processes_here(self) -> list[tuple[int, str]]:
        # Every process mqkit starts here runs with its working directory inside the state
        # directory, so the kernel's table finds them even when state.json is gone.
        if not self.store.dir.is_dir():
            return []
        here = self.store.dir.resolve()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cwd = Path(os.readlink(entry / "cwd"))
                is_here = cwd == here or here in cwd.parents
                if is_here and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append((int(entry.name), (entry / "comm").read_text().strip()))
            except (OSError, IndexError):
                continue  # gone meanwhile, or not ours to look at
        return found

    def discard(self, state: BrokerState | None) -> list[str]:
        """Stop every process of every broker, the broker before its helpers.

        Without a record (``None``), the processes found running in the state directory.
        """
        if state is not None:
            return self._discard_recorded(state)
        stopped = []
        # Brokers (the leaders of their sessions) first, their helpers after them, epmd last:
        # a broker unregisters from epmd while it shuts down.
        def order(process: tuple[int, str]) -> tuple[bool, bool]:
            pid, name = process
            try:
                is_leader = os.getsid(pid) == pid
            except OSError:
                is_leader = False
            return name == "epmd", not is_leader

        for pid, name in sorted(self._processes_here(), key=order):
            if _terminate(pid, ""):
                log.info("stopped %s (pid %s), which ran without a state record", name, pid)
                stopped.append(name)
        return stopped

    def forget_secrets(self, state: BrokerState) -> None:
        """Remove the configs (they hold the password) and the Erlang cookie; logs stay."""
        for spec in self._specs(state):
            folder = self.store.dir / spec.name
            for name in spec.files(self._launch_context(spec, state)):
                (folder / name).unlink(missing_ok=True)
        (self.store.dir / "rabbitmq" / "home" / ".erlang.cookie").unlink(missing_ok=True)

    def leftover_logs(self, spec: BrokerSpec, lines: int) -> str:
        """The newest log files in the broker's folder (after a failed launch)."""
        folder = self.store.dir / spec.name
        logs = sorted(folder.rglob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
        return "\n".join(filter(None, (_tail(path, lines) for path in logs[:2])))

    def exit_reason(self, spec: BrokerSpec, state: BrokerState) -> str | None:
        """The exit code of a broker process that ended while mqkit waited for it."""
        for command in self._commands(spec, state):
            gone = _exit_description(state.pids.get(command.name))
            if gone:
                return f"{command.name}: {gone}"
        return None

    def describe(self, spec: BrokerSpec, state: BrokerState, is_running: bool) -> str:
        """``pid N, port P`` or ``not running (was pid N)``."""
        main = self._commands(spec, state)[-1]
        pid = state.pids.get(main.name)
        port = state.ports[spec.probes[0]]
        return f"pid {pid}, port {port}" if is_running else f"not running (was pid {pid})"

    def broker_logs(self, spec: BrokerSpec, state: BrokerState, lines: int) -> str:
        """The last lines of the broker's log files."""
        folder = self.store.dir / spec.name
        return "\n".join(filter(None, (_tail(folder / name, lines)
                                       for name in spec.log_files(state))))


# -- process helpers -------------------------------------------------------------------


def _which(name: str) -> str | None:
    """An executable by path or name (also in /usr/sbin and Erlang's bin folder)."""
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name) or _first_existing(f"/usr/sbin/{name}",
                                                 f"/usr/lib/erlang/bin/{name}")


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


def _wait_listening(name: str, port: int, child: subprocess.Popen[bytes],
                    timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_listening(port):
        if child.poll() is not None or time.monotonic() > deadline:
            raise BrokerStartError(
                f"{name} did not start listening on 127.0.0.1:{port} "
                f"(exit code {child.poll()}).",
                hint="Check that Erlang is installed (`epmd -help`)." if name == "epmd"
                else "See `mqkit logs`.")
        time.sleep(0.005)  # epmd listens within milliseconds; RabbitMQ starts after it


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
