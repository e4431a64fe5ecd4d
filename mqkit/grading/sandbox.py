"""Where a submission's kernel runs: the grader's sandboxes for untrusted notebooks.

A submission is untrusted code. Its kernel must not read the grader's credentials, change
the installed package, reach services other than its own brokers, leave processes behind or
exhaust the machine. Sandboxes are chosen like the brokers' backends (``--sandbox``):

* ``user`` — as root on Linux: the kernel runs as a dedicated unprivileged user per worker
  slot (``mqkit-grader-0``, ``-1``, …; two submissions graded at once never share a uid),
  in mount, PID and network namespaces of its own:

  - ``/tmp``, ``/var/tmp``, ``/dev/shm`` and its home are small tmpfs of its own, the
    grader's home and state directory are hidden, and the Python environment and the
    project are mounted read-only;
  - when the kernel ends, every process it started ends with it (``setsid`` daemons too);
  - its loopback reaches nothing of the machine's but its broker ports, which the grader
    relays over Unix sockets (:mod:`mqkit.grading.relay`); its ZMQ sockets are Unix
    sockets too;
  - ``prlimit`` caps address space, processes, CPU time and file size.

  What the notebook left running is counted before the kernel stops, and reported; a
  sweep of the uid after the run is the second line of defence.
* ``docker`` — where a Docker Engine answers: the kernel runs in a container of its own
  (read-only root, tmpfs scratch, a non-root user, memory/CPU/process limits, no network but
  the relayed broker ports), removed after the run; see :mod:`mqkit.grading.sandbox_docker`.
* ``none`` — the kernel runs as the grader's own user (the behaviour before sandboxes); only
  when asked for by name, and the gradebook says so.
* ``auto`` — ``docker`` where it can run, else ``user``; otherwise it refuses, and the error
  says how to get a sandbox or how to grade without one on purpose.

Example:
    >>> sandbox = choose_sandbox("auto", slots=2)             # doctest: +SKIP
    >>> with sandbox.session("alice", ports=[5672, 15672]) as confinement:  # doctest: +SKIP
    ...     run_notebook(path, env, confinement=confinement)
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from mqkit.exceptions import ConfigError, SandboxUnavailable
from mqkit.grading.relay import OutsideRelay, pid_file

log = logging.getLogger(__name__)

#: The sandboxes ``--sandbox`` accepts.
SANDBOXES = ("auto", "docker", "user", "none")


@dataclass(frozen=True)
class Limits:
    """What one submission may use.

    Attributes:
        memory_bytes: address space of each process (``RLIMIT_AS``).
        processes: processes and threads of the sandbox user (``RLIMIT_NPROC``).
        cpu_seconds: CPU time of each process (``RLIMIT_CPU``).
        file_bytes: size of any one file written (``RLIMIT_FSIZE``).
        home_bytes: size of the scratch home (a tmpfs).
        tmp_bytes: size of the private ``/tmp`` (and of ``/var/tmp`` and ``/dev/shm``).
        cpus: CPUs a container may use (docker sandbox only).
    """

    memory_bytes: int = 2 * 1024**3
    processes: int = 256
    cpu_seconds: int = 600
    file_bytes: int = 64 * 1024**2
    home_bytes: int = 128 * 1024**2
    tmp_bytes: int = 64 * 1024**2
    cpus: float = 1.0


@dataclass
class Confinement:
    """How the runner launches one submission's kernel, and what the session found after.

    Attributes:
        sandbox: the sandbox's name, for the gradebook.
        command_prefix: put before the kernel's command (the confinement wrapper).
        connection_dir: where the kernel's connection file goes (readable by the kernel).
        owner: ``(uid, gid)`` that must own the connection file, or ``None``.
        ipc: the kernel's ZMQ sockets are Unix sockets in ``connection_dir`` (its network
            namespace has no way to the grader's loopback).
        workdir: the kernel's working directory and home.
        leftovers: processes of the submission still running after its run, killed.
        census: counts those processes while the kernel still runs (the runner calls it
            after the last cell); ``None`` when the sandbox cannot tell.
    """

    sandbox: str
    command_prefix: list[str] = field(default_factory=list)
    connection_dir: Path | None = None
    owner: tuple[int, int] | None = None
    ipc: bool = False
    workdir: Path | None = None
    leftovers: int = 0
    census: Callable[[], int] | None = None


class Sandbox(ABC):
    """A way to run a submission's kernel; one object per grading run."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def unavailable_reason(cls) -> str | None:
        """Why this sandbox cannot run here (``None``: it can)."""

    @abstractmethod
    @contextlib.contextmanager
    def session(self, label: str, ports: Iterable[int],
                notebook: Path | None = None) -> Iterator[Confinement]:
        """Confine one submission that may reach the brokers on ``ports``; clean up after.

        ``notebook`` is the submission, for a sandbox that copies it in.
        """

    def close(self) -> None:  # noqa: B027 - a no-op unless the sandbox holds something
        """Release what the sandbox set up for the grading run."""


class NoSandbox(Sandbox):
    """The kernel runs as the grader's own user, with everything the grader can reach."""

    name = "none"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Always runs."""
        return None

    @contextlib.contextmanager
    def session(self, label: str, ports: Iterable[int],
                notebook: Path | None = None) -> Iterator[Confinement]:
        """No confinement: the kernel runs like any process of the grader's."""
        yield Confinement(self.name)


class UserSandbox(Sandbox):
    """A dedicated uid per worker slot, private mount and network namespaces, and limits.

    Args:
        slots: submissions graded at the same time (one uid each).
        limits: what one submission may use.
        base: where session folders (connection file, scratch home) are made; outside
            ``/tmp``, which the kernel sees as its own tmpfs.
    """

    name = "user"
    USER_PREFIX = "mqkit-grader-"
    TOOLS = ("useradd", "unshare", "setpriv", "prlimit", "mount", "ip")

    def __init__(self, slots: int = 1, limits: Limits | None = None,
                 base: Path = Path("/run/mqkit-grader")) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise SandboxUnavailable(f"The user sandbox cannot run here: {reason}.",
                                     hint=_USER_HINT)
        self.limits = limits or Limits()
        self.base = base
        self.base.mkdir(mode=0o711, parents=True, exist_ok=True)
        os.chmod(self.base, 0o711)
        self._free: queue.Queue[int] = queue.Queue()
        self.uids: dict[int, tuple[int, int]] = {}
        # Slots are claimed with a lock file each, so grading runs at the same time on one
        # machine never share a uid (nor sweep each other's processes).
        self._locks: list[int] = []
        for slot in self._claim_slots(max(1, slots)):
            self.uids[slot] = _ensure_user(f"{self.USER_PREFIX}{slot}")
            _sweep(self.uids[slot][0])  # a crashed earlier run may have left processes
            self._free.put(slot)
        self.hidden = _hidden_paths()
        self.exposed = _runtime_paths()

    MAX_SLOTS = 256

    def _claim_slots(self, wanted: int) -> list[int]:
        import fcntl

        claimed: list[int] = []
        for slot in range(self.MAX_SLOTS):
            fd = os.open(self.base / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._locks.append(fd)
            claimed.append(slot)
            if len(claimed) == wanted:
                return claimed
        raise SandboxUnavailable(f"All {self.MAX_SLOTS} sandbox slots are taken by other "
                                 "grading runs.", hint="Wait for them to finish.")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Linux, root, and the tools it runs (util-linux, iproute2)."""
        if not sys.platform.startswith("linux"):
            return "it needs Linux (user and mount namespaces, /proc)"
        if os.geteuid() != 0:
            return "it needs root (to switch to the sandbox users and set up their mounts)"
        missing = [tool for tool in cls.TOOLS if shutil.which(tool) is None]
        if missing:
            return f"missing tools: {', '.join(missing)}"
        return None

    @contextlib.contextmanager
    def session(self, label: str, ports: Iterable[int],
                notebook: Path | None = None) -> Iterator[Confinement]:
        """Take a free slot's uid for one submission; sweep and free it afterwards."""
        slot = self._free.get()
        uid, gid = self.uids[slot]
        folder = self.base / f"{slot}-{secrets.token_hex(6)}"
        home = folder / "home"
        ports = sorted(set(ports))
        confinement = Confinement(self.name, self._wrapper(uid, gid, folder, home, ports),
                                  connection_dir=folder, owner=(uid, gid), ipc=True,
                                  workdir=home)

        def census() -> int:
            # Every live process of the slot's uid but the kernel (the one whose parent is
            # not the uid's: the namespace's root-owned unshare) and the relay.
            mine = set(processes_of(uid))
            kernels = {pid for pid in mine if _parent(pid) not in mine}
            return len(mine - kernels - {_host_pid(_relay_pid(folder), mine)})

        confinement.census = census
        relay: OutsideRelay | None = None
        try:
            folder.mkdir(mode=0o700)
            home.mkdir(mode=0o700)
            os.chown(folder, uid, gid)
            os.chown(home, uid, gid)
            relay = OutsideRelay(folder, ports, (uid, gid))
            yield confinement
        finally:
            # The kernel's PID namespace ends with it, so nothing should be left to sweep;
            # the sweep is the second line of defence.
            swept = _sweep(uid, expected=_host_pid(_relay_pid(folder), processes_of(uid)))
            confinement.leftovers = max(confinement.leftovers, swept)
            if relay is not None:
                relay.close()
            shutil.rmtree(folder, ignore_errors=True)
            self._free.put(slot)
        if confinement.leftovers:
            log.info("sandbox %s: %d process(es) of %s outlived the run and were killed",
                     slot, confinement.leftovers, label)

    def _wrapper(self, uid: int, gid: int, folder: Path, home: Path,
                 ports: Sequence[int]) -> list[str]:
        """``unshare … sh -c 'mounts; relay; exec setpriv … prlimit …'``: the kernel follows.

        In the kernel's own mount namespace (nothing propagates back): the runtime paths
        that sit inside a covered one are first bound aside, the hidden paths become empty
        tmpfs and the ``/tmp``-like folders small ones, the runtime paths come back
        read-only, the home becomes a small tmpfs, and ``/proc`` shows the uid only its own
        processes. In its own
        network namespace, loopback comes up and the relay listens on the broker ports.
        """
        limits = self.limits
        q = shlex.quote
        drop = (f"setpriv --reuid={uid} --regid={gid} --clear-groups --no-new-privs "
                "--inh-caps=-all --bounding-set=-all")
        steps = ["set -e", "ip link set lo up"]
        # What gets covered: the hidden paths (an empty tmpfs) and the /tmp-like folders (a
        # small tmpfs of the kernel's own). A runtime path under a covered one (a project
        # cloned into /tmp, a venv in the grader's home) is bound aside first and put back.
        tmps = [Path(tmp) for tmp in ("/tmp", "/var/tmp", "/dev/shm") if Path(tmp).is_dir()]
        covers = [*self.hidden, *(tmp for tmp in tmps if not _under_any(tmp, self.hidden))]
        inside = [path for path in self.exposed if _under_any(path, covers)]
        for index, path in enumerate(inside):
            stage = folder / f".stage{index}"
            steps += [f"mkdir -p {q(str(stage))}", f"mount --bind {q(str(path))} {q(str(stage))}"]
        steps += [f"mount -t tmpfs -o size=1m,mode=0755 mqkit-hidden {q(str(path))}"
                  for path in self.hidden]
        steps += [f"mount -t tmpfs -o size={limits.tmp_bytes},mode=1777 mqkit-tmp {q(str(tmp))}"
                  for tmp in tmps]
        for index, path in enumerate(inside):
            stage = folder / f".stage{index}"
            steps += [f"mkdir -p {q(str(path))}", f"mount --move {q(str(stage))} {q(str(path))}"]
        for path in self.exposed:
            if path not in inside:
                steps.append(f"mount --bind {q(str(path))} {q(str(path))}")
            steps.append(f"mount -o remount,bind,ro {q(str(path))}")
        # A hidden path inside a runtime path (a state directory in the project) came back
        # with it: cover it again.
        steps += [f"mount -t tmpfs -o size=1m,mode=0755 mqkit-hidden {q(str(path))}"
                  for path in self.hidden if _under_any(path, self.exposed)]
        steps += ["mount -t proc -o hidepid=2 proc /proc",
                  f"mount -t tmpfs -o size={limits.home_bytes},mode=0700,uid={uid},gid={gid} "
                  f"mqkit-home {q(str(home))}",
                  f"cd {q(str(home))}",
                  f"{drop} {q(sys.executable)} -m mqkit.grading.relay {q(str(folder))} "
                  + " ".join(str(port) for port in ports),
                  f"exec {drop} "
                  f"prlimit --as={limits.memory_bytes} --nproc={limits.processes} "
                  f"--cpu={limits.cpu_seconds} --fsize={limits.file_bytes} --core=0 -- "
                  '"$@"']
        return ["unshare", "--mount", "--net", "--pid", "--kill-child", "--propagation",
                "private", "--", "sh", "-c",
                "; ".join(steps), "mqkit-sandbox"]

    def close(self) -> None:
        """Kill what is left of every slot's uid and give the slots back."""
        for uid, _gid in self.uids.values():
            _sweep(uid)
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()


_USER_HINT = ("Run the grader as root on Linux with util-linux (unshare, setpriv, prlimit) and "
              "iproute2 (ip) installed, or pass --sandbox none to grade "
              "without a sandbox on purpose: the notebooks then run as you, with your files "
              "and every local service in reach.")

def sandbox_classes() -> dict[str, type[Sandbox]]:
    """Every sandbox by name (the docker one imported here: it imports this module)."""
    from mqkit.grading.sandbox_docker import DockerSandbox

    return {"docker": DockerSandbox, "user": UserSandbox, "none": NoSandbox}


def choose_sandbox(name: str = "auto", *, slots: int = 1,
                   limits: Limits | None = None) -> Sandbox:
    """The sandbox for a grading run: by name, or ``auto`` (the first that can run here).

    ``auto`` tries ``docker``, then ``user``; it never falls back to ``none``.

    Raises:
        ConfigError: an unknown name.
        SandboxUnavailable: the requested sandbox cannot run here; ``auto`` found none.
    """
    if name not in SANDBOXES:
        raise ConfigError(f"Unknown sandbox {name!r}.",
                          hint=f"Choose one of {', '.join(SANDBOXES)}.")
    classes = sandbox_classes()
    if name == "none":
        return NoSandbox()
    if name != "auto":
        return classes[name](slots, limits)  # type: ignore[call-arg]
    reasons = []
    for candidate in ("docker", "user"):
        reason = classes[candidate].unavailable_reason()
        if reason is None:
            return classes[candidate](slots, limits)  # type: ignore[call-arg]
        reasons.append(f"{candidate}: {reason}")
    raise SandboxUnavailable("No sandbox can run here to grade untrusted notebooks "
                             f"({'; '.join(reasons)}).", hint=_AUTO_HINT)


_AUTO_HINT = ("Start a Docker Engine and build the stand-in base image "
              "(scripts/docker-engine.sh, docker/standin/build.sh) for the docker sandbox, "
              "or run the grader as root on Linux with util-linux and iproute2 for the user "
              "sandbox, or pass --sandbox none to grade without a sandbox on purpose: the "
              "notebooks then run as you, with your files and every local service in reach.")


# -- the pieces ------------------------------------------------------------------------------


def _ensure_user(name: str) -> tuple[int, int]:
    """The uid and gid of system user ``name``, created (no home, no login) if missing."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--user-group", name],
                       check=True, capture_output=True, timeout=30)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def processes_of(uid: int) -> list[int]:
    """The pids of every live process of ours whose real or effective uid is ``uid``.

    *Ours*: in the grader's own control groups, which every process a submission starts
    inherits and cannot leave (moving needs write access to a root-owned ``cgroup.procs``).
    A container's processes live in the container's cgroups, and their uids are numbers
    from the image: seen here, Debian sid's ``mosquitto`` user is uid 995 and the official
    RabbitMQ image's ``rabbitmq`` is 999, the uids ``useradd --system`` gave two grader
    slots. Without this test the sweep killed a Mosquitto container of that uid.
    """
    found = []
    ours = _cgroups("self")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _cgroups(entry.name) != ours:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    real, effective = (int(part) for part in line.split()[1:3])
                    if uid in (real, effective):
                        found.append(int(entry.name))
                    break
                if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                    break  # dead already (a zombie waiting for its parent): not running
        except (OSError, ValueError):
            continue  # the process ended while we looked
    return found


def _cgroups(pid: str) -> str:
    """``/proc/PID/cgroup`` (raises ``OSError`` when the process is gone)."""
    return Path(f"/proc/{pid}/cgroup").read_text()


def _parent(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _host_pid(inner: int | None, candidates: Iterable[int]) -> int | None:
    """Our pid of the candidate whose pid inside its own PID namespace is ``inner``."""
    if inner is None:
        return None
    for pid in candidates:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("NSpid:") and int(line.split()[-1]) == inner:
                    return pid
        except (OSError, ValueError):
            continue
    return None


def _relay_pid(folder: Path) -> int | None:
    try:
        return int(pid_file(folder).read_text())
    except (OSError, ValueError):
        return None


def _sweep(uid: int, rounds: int = 50, expected: int | None = None) -> int:
    """Kill every process of ``uid`` (a fork bomb too: it cannot outrun SIGKILL rounds).

    Returns the number of distinct processes found, not counting ``expected`` (the
    sandbox's own relay); 0 when nothing else was left.
    """
    seen: set[int] = set()
    for _ in range(rounds):
        pids = processes_of(uid)
        if not pids:
            break
        seen.update(pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    else:
        log.warning("processes of uid %d survived %d rounds of SIGKILL", uid, rounds)
    return len(seen - {expected})


def _hidden_paths() -> list[Path]:
    """What the kernel must not see: the grader's home and mqkit state directory."""
    from mqkit.config import Settings

    candidates = [Path.home(), Settings.from_env().state_dir]
    hidden: list[Path] = []
    for path in candidates:
        path = path.resolve()
        if path.is_dir() and path != Path("/") and not _under_any(path, hidden):
            hidden.append(path)
    return hidden


def _runtime_paths() -> list[Path]:
    """What the kernel needs to run: the Python installation, the venv and the project."""
    project = Path(__file__).resolve().parents[2]  # the folder that holds the mqkit package
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), project}
    # Keep the outermost only: mounting a path and then one inside it adds nothing.
    ordered = sorted(paths, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not _under_any(path, kept):
            kept.append(path)
    return kept


def _under_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)
