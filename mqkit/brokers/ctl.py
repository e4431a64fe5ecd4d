"""``rabbitmqctl`` for the RabbitMQ that mqkit runs: the command line, and running it.

``rabbitmqctl`` talks to a RabbitMQ node over Erlang distribution, so it needs the node's
name, the port of its epmd and its Erlang cookie. A system RabbitMQ has the defaults; the
node mqkit runs as a process has its own (a per-start node name, an epmd on a free loopback
port, the cookie in its own home folder), so the plain command would look for the wrong
node; for a local cluster the command names node 1. In a container, ``docker exec`` runs
the image's own ``rabbitmqctl``, whose environment already points at the node. An external
broker is not mqkit's to reach: its administrator runs ``rabbitmqctl`` on the broker's host.

Unlike the management API's figures, which are statistics collected every few seconds,
``rabbitmqctl list_queues`` asks the queues themselves.

Example:
    >>> command = rabbitmqctl_command("list_queues", "name", "messages_ready")  # doctest: +SKIP
    >>> print(command.shell)                                                # doctest: +SKIP
    >>> print(command.run())                                                # doctest: +SKIP
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mqkit.brokers.cluster import ClusterBackend, node_name
from mqkit.brokers.docker import DockerBackend
from mqkit.brokers.launcher import active_backend
from mqkit.brokers.process import ProcessBackend
from mqkit.brokers.specs import RABBITMQ
from mqkit.exceptions import BackendUnavailable, BrokerNotRunning

#: Seconds one ``rabbitmqctl`` call may take (the CLI starts an Erlang VM of its own).
CTL_TIMEOUT = 60.0


@dataclass(frozen=True)
class CtlCommand:
    """A ``rabbitmqctl`` call for the node mqkit runs.

    Attributes:
        argv: the program and its arguments.
        env: variables to set for it (on top of the caller's environment).
        container: the container to run it in (docker backend), else ``""``.
    """

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    container: str = ""

    @property
    def shell(self) -> str:
        """The command as a student types it in a terminal."""
        if self.container:
            return shlex.join(["docker", "exec", self.container, *self.argv])
        assignments = [f"{name}={shlex.quote(value)}" for name, value in self.env.items()]
        return " ".join([*assignments, shlex.join(self.argv)])

    def run(self, timeout: float = CTL_TIMEOUT) -> str:
        """Run the command and return what it printed.

        Raises:
            BackendUnavailable: the command failed (its last lines are in the message).
        """
        if self.container:
            docker = active_backend("docker")
            assert isinstance(docker, DockerBackend)
            container = docker.client().containers.get(self.container)
            code, output = container.exec_run(self.argv)
            text = output.decode(errors="replace")
        else:
            done = subprocess.run(self.argv, env={**os.environ, **self.env}, timeout=timeout,
                                  capture_output=True, text=True, check=False)
            code, text = done.returncode, done.stdout + done.stderr
        if code != 0:
            tail = "\n".join(text.strip().splitlines()[-5:])
            raise BackendUnavailable(f"rabbitmqctl exited with {code}: {tail}",
                                     hint="Is RabbitMQ running? `mqkit status` shows it.")
        return text


def rabbitmqctl_command(*args: str, backend: str | None = None) -> CtlCommand:
    """The ``rabbitmqctl`` call, with ``args``, for the RabbitMQ that mqkit runs now.

    Args:
        args: the subcommand and its arguments, e.g. ``"list_queues", "name"``.
        backend: the backend to ask (default: the one in use, as :func:`mqkit.broker_status`).

    Raises:
        BrokerNotRunning: mqkit runs no RabbitMQ.
        BackendUnavailable: the broker is external (not mqkit's to reach with rabbitmqctl).
    """
    chosen = active_backend(backend)
    arguments = ["-q", *args]  # -q: the table only, without "Listing queues ..." lines
    if isinstance(chosen, ProcessBackend):
        state = chosen.store.load()
        if state is None or not state.nodename:
            raise BrokerNotRunning("mqkit runs no RabbitMQ process.",
                                   hint="Start it with mqkit.start_brokers() or `mqkit up`.")
        server = Path(state.binaries.get("rabbitmq-server", "/usr/lib/rabbitmq/bin/x"))
        node, folder = state.nodename, chosen.store.dir / RABBITMQ.name
        if isinstance(chosen, ClusterBackend):  # node 1 answers for the whole cluster
            node, folder = node_name(state, 1), chosen.store.dir / chosen.node_names[0]
        # The cookie sits in the node's own home; epmd on the node's own port.
        return CtlCommand([str(server.with_name("rabbitmqctl")), "-n", node, *arguments],
                          env={"HOME": str(folder / "home"),
                               "ERL_EPMD_PORT": str(state.ports["epmd"])})
    if isinstance(chosen, DockerBackend):
        return CtlCommand(["rabbitmqctl", *arguments],
                          container=chosen.container_name(RABBITMQ.name))
    raise BackendUnavailable(
        f"The brokers come from the {chosen.name} backend: mqkit cannot reach its node.",
        hint="Its administrator runs rabbitmqctl on the broker's host; the management UI "
             "shows the same columns.")
