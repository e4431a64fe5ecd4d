"""The per-user state directory: credentials, pids and broker data, readable by the user only.

Layout: ``STATE_DIR/<backend>/state.json`` plus one folder per broker. Passwords live here,
so folders are created ``0700`` and files ``0600``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


class StateStore:
    """Reads and writes one backend's state under the state directory.

    Args:
        root: the state directory (``Settings.state_dir``).
        backend: the backend's name; its folder is ``root/backend``.
    """

    def __init__(self, root: Path, backend: str) -> None:
        self.root = Path(root)
        self.dir = self.root / backend

    @property
    def file(self) -> Path:
        """The JSON state file."""
        return self.dir / "state.json"

    def ensure_dir(self, *parts: str) -> Path:
        """Create (mode 0700) and return a folder inside this backend's state."""
        for folder in (self.root, self.dir):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        path = self.dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load(self) -> BrokerState | None:
        """The saved state, or ``None`` when there is none or it is unreadable."""
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return None
        return BrokerState.from_dict(data) if isinstance(data, dict) else None

    def save(self, state: BrokerState) -> None:
        """Write the state atomically, readable by the user only."""
        self.ensure_dir()
        tmp = self.file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state.to_dict(), handle, indent=2, sort_keys=True)
        os.replace(tmp, self.file)

    def write_private(self, path: Path, text: str, mode: int = 0o600) -> Path:
        """Write a file with ``mode`` (0600 unless a container user must read it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        path.chmod(mode)
        return path

    def clear(self) -> None:
        """Remove this backend's whole state folder."""
        shutil.rmtree(self.dir, ignore_errors=True)

    @contextlib.contextmanager
    def locked(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold this backend's lock: one start, stop or restart at a time, across processes.

        Two notebooks calling ``start_brokers()`` at once, or three ``mqkit up``: the second
        waits for the first and then finds its brokers, instead of launching into the same
        folder. The lock file sits beside the backend's folder, which :meth:`clear` removes.

        Args:
            on_wait: called once when the lock is busy, before waiting for it.
        """
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        fd = os.open(self.root / f".{self.dir.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()  # someone else is starting these brokers: say so, then wait
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


@dataclass
class BrokerState:
    """The state record of brokers mqkit started: what a later call needs to find them again.

    Saved as ``state.json`` (0600: it holds the password). Backend-specific fields stay
    empty where they do not apply.

    Attributes:
        backend: ``docker`` or ``process``.
        username: the brokers' user.
        password: its password (random per fresh start).
        ports: port name (``amqp``, ``management``, ``mqtt``, ``dist``, ``epmd``) -> number.
        brokers: the brokers started, in start order.
        nodename: RabbitMQ's Erlang node name (process backend, docker host network).
        binaries: executables by name (process backend).
        pids: process name -> pid (process backend).
        instance: the container name prefix (docker backend).
        network: ``bridge`` or ``host`` (docker backend).
        images: broker -> image (docker backend).
    """

    backend: str
    username: str
    password: str
    ports: dict[str, int]
    brokers: list[str] = field(default_factory=lambda: ["rabbitmq", "mosquitto"])
    nodename: str = ""
    binaries: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    instance: str = ""
    network: str = ""
    images: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrokerState | None:
        """A record from saved JSON, or ``None`` when it is not one (other fields ignored)."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except TypeError:
            return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object saved in ``state.json``."""
        return asdict(self)
