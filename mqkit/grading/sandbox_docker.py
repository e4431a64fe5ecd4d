"""The docker sandbox: each submission's kernel in a container of its own.

Where a Docker Engine answers, ``--sandbox docker`` (and ``auto``, first) runs every kernel in a
fresh container, removed when the submission ends (done, timed out or crashed):

* **image** — ``mqkit-sandbox/kernel:1``, built here on first use from ``docker/sandbox``
  ``FROM`` the stand-in base ``mqkit-standin/base:bookworm`` (``docker/standin/build.sh``), so
  no registry is needed. It holds no Python of its own: the grader's Python installation
  (``sys.base_prefix``), its venv and the project are mounted **read-only at the same paths**.
  Why mount rather than copy the environment into the image: a kernel then runs exactly the
  code and packages the grader runs (an edit to a check or a new dependency needs no rebuild,
  and an image cannot go stale), the venv's absolute paths and the editable install keep
  working unchanged, and the image builds in about a second. The price: the host's Python must
  run on the base image's libraries — true for a Debian bookworm host on a bookworm base (as
  here); elsewhere build the base from the host's own release (``MQKIT_STANDIN_SUITE``);
* **file system** — the root is read-only; the kernel's home (its working directory, where the
  submission is copied in) and ``/tmp``, ``/var/tmp``, ``/dev/shm`` are size-capped tmpfs; the
  grader's home and state directory are not there at all (only the Python installation under
  it is mounted), and hidden paths inside the project are covered by empty tmpfs;
* **user** — uid 65532 (``mqkit-kernel``), no capabilities, ``no-new-privileges``;
* **limits** — memory (``mem_limit``, no swap; ``RLIMIT_DATA`` too, so an allocation fails with
  ``MemoryError`` before the OOM killer is needed), CPU (``nano_cpus``), processes
  (``pids_limit``), CPU time and file size (ulimits);
* **network** — ``network_mode="none"``: a loopback of its own and nothing else. The brokers'
  ports are relayed over Unix sockets in the session's folder, the only folder of the grader's
  mounted writable (:mod:`mqkit.grading.relay`: inside, a relay listens on
  ``127.0.0.1:<port>``); the kernel's ZMQ sockets are Unix sockets there too. No traffic goes
  to the Docker bridge or any other address: never host networking, which would expose every
  loopback service of the machine;
* **nothing outlives a submission** — an init (``docker-init``) reaps and forwards signals;
  what the notebook left running is counted before the kernel stops and reported; then the
  container is force-removed (every process in it ends, ``setsid`` daemons too), its scratch
  tmpfs with it, and the session's folder is deleted. The grader checks that no container of
  the session is left. Containers carry ``io.mqkit.sandbox*`` labels, so leftovers of a crashed
  grading run are found (:func:`leftover_containers`) and removed by the next run.

The kernel is launched by a small wrapper (:mod:`mqkit.grading.docker_kernel`), which Jupyter
starts like a kernel: it creates the container with the kernel's environment (the scoped
namespace's URLs, nothing of the grader's credentials), waits for it, forwards interrupts,
and passes on the last lines the kernel wrote when it dies.

Example:
    >>> sandbox = DockerSandbox()                                       # doctest: +SKIP
    >>> with sandbox.session("alice", [5672, 1883], notebook=path) as confinement:  # doctest: +SKIP
    ...     run_notebook(path, env, confinement=confinement)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mqkit.exceptions import SandboxUnavailable
from mqkit.grading import docker_kernel
from mqkit.grading import relay as relay_module
from mqkit.grading.relay import OutsideRelay, pid_file
from mqkit.grading.sandbox import (
    Confinement,
    Limits,
    Sandbox,
    _hidden_paths,
    _runtime_paths,
    _under_any,
)

log = logging.getLogger(__name__)

#: The kernel image, built from :data:`BASE_IMAGE` and ``docker/sandbox``.
IMAGE = "mqkit-sandbox/kernel:1"
#: The stand-in base that ``docker/standin/build.sh`` makes.
BASE_IMAGE = "mqkit-standin/base:bookworm"
#: The kernel's user inside the container (the image's ``mqkit-kernel``).
KERNEL_UID = 65532
#: Every sandbox container has this label; the others say whose it is.
LABEL = "io.mqkit.sandbox"
DOCKERFILE_DIR = Path(__file__).resolve().parents[2] / "docker" / "sandbox"

HINT = ("Start a Docker Engine (scripts/docker-engine.sh) and build the stand-in base image "
        "(docker/standin/build.sh, as root; the kernel image is then built from it), or use "
        "--sandbox user as root on Linux, or --sandbox none to grade without a sandbox on "
        "purpose.")


def _docker_client(timeout: int = 10) -> Any:
    """A Docker SDK client that answered a ping; raises SandboxUnavailable otherwise."""
    try:
        import docker
    except ImportError as exc:
        raise SandboxUnavailable("The docker sandbox needs the Docker SDK for Python.",
                                 hint="pip install 'docker>=7'") from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        raise SandboxUnavailable(f"No Docker Engine answers: {exc}.", hint=HINT) from exc
    return client


def _has_image(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_image(client: Any, image: str = IMAGE, base: str = BASE_IMAGE) -> str:
    """The kernel image, built from ``base`` if it is not there yet.

    Raises:
        SandboxUnavailable: neither the image nor its base is there, or the build failed.
    """
    if _has_image(client, image):
        return image
    if not _has_image(client, base):
        raise SandboxUnavailable(f"Neither the sandbox's kernel image {image} nor its base "
                                 f"{base} is there (no registry is needed or used).",
                                 hint=HINT)
    if not (DOCKERFILE_DIR / "Dockerfile").is_file():
        raise SandboxUnavailable(f"The kernel image's Dockerfile is missing ({DOCKERFILE_DIR}).",
                                 hint="Grade from a checkout of the project, or build "
                                      f"{image} by hand.")
    log.info("building the sandbox's kernel image %s from %s", image, base)
    try:
        client.images.build(path=str(DOCKERFILE_DIR), tag=image, buildargs={"BASE": base},
                            rm=True, pull=False, network_mode="none")
    except Exception as exc:
        raise SandboxUnavailable(f"Building the kernel image {image} from {base} failed: "
                                 f"{exc}.", hint=HINT) from exc
    return image


def leftover_containers(client: Any | None = None) -> list[str]:
    """Names of every sandbox container on the engine (running or not)."""
    client = client or _docker_client()
    return sorted(c.name for c in client.containers.list(all=True, filters={"label": LABEL}))


def _grader_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _remove_orphans(client: Any) -> None:
    """Remove sandbox containers whose grading run (a process on this host) is gone."""
    host = socket.gethostname()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner = container.labels.get(f"{LABEL}.grader", "")
        name, _, pid = owner.rpartition(":")
        if name != host or not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        log.warning("removing %s, left by grading run %s that ended", container.name, owner)
        with contextlib.suppress(Exception):
            container.remove(force=True)


def _kernel_pid_file(folder: Path) -> Path:
    return folder / "kernel.pid"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


class DockerSandbox(Sandbox):
    """A container per submission: read-only root, tmpfs scratch, limits, no network.

    Args:
        slots: submissions graded at the same time (unused: every container is its own).
        limits: what one submission may use.
        base: where session folders (connection file, relay sockets) are made.
        image: the kernel image (built from ``base_image`` when missing).
        base_image: the stand-in base the kernel image is built from.
    """

    name = "docker"

    def __init__(self, slots: int = 1, limits: Limits | None = None,
                 base: Path = Path("/run/mqkit-grader-docker"), image: str = IMAGE,
                 base_image: str = BASE_IMAGE) -> None:
        self.client = _docker_client()
        self.image = ensure_image(self.client, image, base_image)
        _remove_orphans(self.client)
        self.limits = limits or Limits()
        self.base = base
        self.base.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.grader = _grader_id()
        # As root the kernel gets a uid of its own; a grader in the docker group (not root)
        # cannot hand files to another uid, so its kernels run as its uid (still without any
        # of its files: only the runtime paths are mounted, read-only).
        self.owner = ((KERNEL_UID, KERNEL_UID) if os.geteuid() == 0
                      else (os.getuid(), os.getgid()))
        self.hidden = _hidden_paths()
        self.exposed = _runtime_paths()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """The Docker SDK, an engine that answers, and the kernel image or its base."""
        try:
            client = _docker_client(timeout=5)
        except SandboxUnavailable as exc:
            return str(exc).split("\nHint:")[0].rstrip(".")
        if not (_has_image(client, IMAGE) or _has_image(client, BASE_IMAGE)):
            return f"neither the kernel image {IMAGE} nor its base {BASE_IMAGE} is there"
        return None

    def _mounts(self, folder: Path) -> list[dict[str, Any]]:
        mounts = [{"source": str(path), "target": str(path), "read_only": True}
                  for path in self.exposed]
        mounts.append({"source": str(folder), "target": str(folder), "read_only": False})
        return mounts

    def _tmpfs(self, home: Path) -> dict[str, str]:
        limits = self.limits
        uid, gid = self.owner
        tmpfs = {str(home): f"size={limits.home_bytes},mode=0700,uid={uid},gid={gid}",
                 "/tmp": f"size={limits.tmp_bytes},mode=1777",
                 "/var/tmp": f"size={limits.tmp_bytes},mode=1777"}
        # A hidden path inside a mounted one (a state directory in the project): covered.
        tmpfs |= {str(path): "size=1m,mode=0755" for path in self.hidden
                  if _under_any(path, self.exposed)}
        return tmpfs

    @contextlib.contextmanager
    def session(self, label: str, ports: Iterable[int],
                notebook: Path | None = None) -> Iterator[Confinement]:
        """A container for one submission that may reach the brokers on ``ports`` only."""
        token = secrets.token_hex(6)
        folder = self.base / token
        home = folder / "home"
        ports = sorted(set(ports))
        name = f"mqkit-sandbox-{token}"
        limits = self.limits
        spec = {
            "image": self.image, "name": name, "user": "{}:{}".format(*self.owner),
            "folder": str(folder), "home": str(home), "ports": ports,
            "labels": {LABEL: "kernel", f"{LABEL}.session": token,
                       f"{LABEL}.grader": self.grader,
                       f"{LABEL}.student": label[:60]},
            "mounts": self._mounts(folder), "tmpfs": self._tmpfs(home),
            "mem_limit": limits.memory_bytes, "nano_cpus": int(limits.cpus * 1e9),
            "pids_limit": limits.processes, "shm_size": limits.tmp_bytes,
            "ulimits": {"data": limits.memory_bytes, "cpu": limits.cpu_seconds,
                        "fsize": limits.file_bytes, "core": 0},
        }
        # Run by path (-I: none of the kernel's PYTHON* variables): neither the wrapper nor the
        # relay imports mqkit, which saves about a second of CPU per submission.
        spec |= {"python": sys.executable, "relay": str(Path(relay_module.__file__)),
                 "kernel_pid": str(_kernel_pid_file(folder))}
        prefix = [sys.executable, "-I", str(Path(docker_kernel.__file__)), json.dumps(spec)]
        confinement = Confinement(self.name, prefix, connection_dir=folder, owner=self.owner,
                                  ipc=True, workdir=home)
        confinement.census = lambda: self._census(name, folder)
        relay: OutsideRelay | None = None
        try:
            folder.mkdir(mode=0o700)
            home.mkdir(mode=0o700)
            os.chown(folder, *self.owner)
            os.chown(home, *self.owner)
            if notebook is not None:
                copy = folder / "submission.ipynb"
                shutil.copyfile(notebook, copy)
                os.chown(copy, *self.owner)
            relay = OutsideRelay(folder, ports, self.owner)
            yield confinement
        finally:
            left = self._remove(token)
            if relay is not None:
                relay.close()
            shutil.rmtree(folder, ignore_errors=True)
            if left:
                # Reported with the submission's leftovers, and loudly here.
                confinement.leftovers += len(left)
                log.error("sandbox container(s) of %s could not be removed: %s", label,
                          ", ".join(left))
        if confinement.leftovers:
            log.info("sandbox %s: %d process(es) of %s were still running after the run; "
                     "removed with the container", name, confinement.leftovers, label)

    def _census(self, name: str, folder: Path) -> int:
        """Processes in the container but its init, the kernel and the relay."""
        try:
            state = self.client.containers.get(name).attrs["State"]
            namespace = os.readlink(f"/proc/{state['Pid']}/ns/pid")
        except Exception:
            return 0  # the container is gone already: nothing runs in it
        # Inside: docker-init is 1; the kernel and the relay wrote their pids. (The files are
        # the kernel's to write: a false pid only makes another process count instead.)
        expected = {1, *(_read_pid(path) for path in (pid_file(folder), _kernel_pid_file(folder)))}
        count = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns" / "pid") != namespace:
                    continue
                status = (entry / "status").read_text().splitlines()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status if ":" in line)
            if fields.get("State", "").split()[:1] in (["Z"], ["X"]):
                continue
            inner = int(fields.get("NSpid", "0").split()[-1])
            if inner not in expected:
                count += 1
        return count

    def _remove(self, token: str) -> list[str]:
        """Force-remove the session's container(s); the names of any still there after."""
        selector = {"label": f"{LABEL}.session={token}"}
        for container in self.client.containers.list(all=True, filters=selector):
            with contextlib.suppress(Exception):
                container.remove(force=True)
        return [c.name for c in self.client.containers.list(all=True, filters=selector)]

    def close(self) -> None:
        """Remove whatever container of this grading run is still there."""
        selector = {"label": f"{LABEL}.grader={self.grader}"}
        for container in self.client.containers.list(all=True, filters=selector):
            with contextlib.suppress(Exception):
                container.remove(force=True)
        self.client.close()
