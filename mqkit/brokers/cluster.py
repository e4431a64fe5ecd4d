"""A local RabbitMQ cluster: N nodes as processes on loopback, and one Mosquitto.

For instructors who rehearse on the kind of broker a department runs, and for the tests of
failover and quorum queues. Each node is a copy of the :data:`~mqkit.brokers.specs.RABBITMQ`
spec with its own name, folder, AMQP, management and Erlang distribution ports; all nodes
share one epmd (on loopback) and one Erlang cookie. They form the cluster by themselves at
boot through RabbitMQ's config-file peer discovery (``classic_config``), so the nodes boot in
parallel and no ``rabbitmqctl`` call is needed. The AMQP URL is the comma-separated list of
the nodes' URLs, which every mqkit client tries in turn.

Example:
    >>> endpoints = start_cluster(nodes=3)                   # doctest: +SKIP
    >>> endpoints.amqp_url.count(",")                        # doctest: +SKIP
    2
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from typing import Any

from mqkit.brokers.process import ProcessBackend, _terminate
from mqkit.brokers.progress import report
from mqkit.brokers.specs import MOSQUITTO, RABBITMQ, BrokerSpec, Command, Launch, Port
from mqkit.brokers.state import BrokerState, StateStore
from mqkit.config import Settings
from mqkit.endpoints import Endpoints
from mqkit.exceptions import BrokerConnectionError, BrokerNotRunning, BrokerTimeout, ConfigError

log = logging.getLogger(__name__)

#: The nodes of a cluster when none is asked for.
DEFAULT_NODES = 3
#: The largest cluster mqkit starts (each node wants a few hundred MiB).
MAX_NODES = 7
#: The cluster's shared Erlang cookie, in each node's home folder.
COOKIE = ".erlang.cookie"


def node_name(state: BrokerState, index: int) -> str:
    """The Erlang node name of node ``index`` (1-based): the start's name with ``-index``."""
    name, _, host = state.nodename.partition("@")
    return f"{name}-{index}@{host}"


def _node_ports(ports: dict[str, int], index: int) -> dict[str, int]:
    return {"amqp": ports[f"amqp-{index}"], "management": ports[f"management-{index}"],
            "dist": ports[f"dist-{index}"], "epmd": ports["epmd"]}


def _node_state(state: BrokerState, index: int) -> BrokerState:
    # A view of the record as the single-node spec expects it; pids stay shared.
    return dataclasses.replace(state, nodename=node_name(state, index),
                               ports=_node_ports(state.ports, index))


def _node_launch(launch: Launch, index: int) -> Launch:
    state = _node_state(launch.state, index)
    return dataclasses.replace(launch, state=state, ports=state.ports)


def node_spec(index: int, size: int) -> BrokerSpec:
    """RabbitMQ node ``index`` of a ``size``-node cluster, as a spec of its own.

    Its config adds the other nodes as ``classic_config`` peers; its process is recorded as
    ``rabbitmq-INDEX``; epmd is the cluster's one (started by the first node that needs it).
    """
    name = f"rabbitmq-{index}"

    def files(launch: Launch) -> dict[str, str]:
        found = RABBITMQ.files(_node_launch(launch, index))
        peers = "".join(f"cluster_formation.classic_config.nodes.{n} = "
                        f"{node_name(launch.state, n)}\n" for n in range(1, size + 1))
        # The first node to take the peer-discovery lock looks for running peers, and
        # boots alone when it finds none; the others then join it one at a time. Node 1 is
        # started first, so it gives up looking soon (RabbitMQ's default: 10 tries 500 ms
        # apart); the others keep the default, so a slow node 1 makes them wait, not split.
        seed = "cluster_formation.discovery_retry_limit = 1\n" if index == 1 else ""
        found["rabbitmq.conf"] += (
            "# A cluster: the nodes find each other in this list when they boot.\n"
            "cluster_formation.peer_discovery_backend = classic_config\n" + peers + seed)
        return found

    def commands(launch: Launch, binaries: dict[str, str]) -> list[Command]:
        return [command if command.name == "epmd" else dataclasses.replace(command, name=name)
                for command in RABBITMQ.commands(_node_launch(launch, index), binaries)]

    return dataclasses.replace(
        RABBITMQ, name=name, title=f"RabbitMQ node {index}",
        ports=(Port(f"amqp-{index}", "amqp"), Port(f"management-{index}", "http"),
               Port(f"dist-{index}"), Port("epmd")),
        probes=(f"amqp-{index}", f"management-{index}"),
        files=files, commands=commands,
        log_files=lambda state: RABBITMQ.log_files(_node_state(state, index)),
        watched=(f"amqp-{index}",))


class ClusterBackend(ProcessBackend):
    """N RabbitMQ nodes in one cluster and a Mosquitto, as processes of the current user.

    The state lives in the state directory's ``cluster`` folder, beside (not instead of) the
    process backend's, so ``mqkit down`` stops either.

    Args:
        settings: resolved settings.
        nodes: the cluster's size for a fresh start (default: what the state directory
            records, else 3). Brokers already running keep their size.
    """

    name = "cluster"

    def __init__(self, settings: Settings, nodes: int | None = None) -> None:
        self.nodes = nodes or _recorded_nodes(settings) or DEFAULT_NODES
        if not 2 <= self.nodes <= MAX_NODES:
            raise ConfigError(f"A cluster of {self.nodes} nodes is not one mqkit starts.",
                              hint=f"Ask for 2 to {MAX_NODES} nodes (3 is the usual size).")
        specs = [node_spec(i, self.nodes) for i in range(1, self.nodes + 1)]
        super().__init__(settings, (*specs, MOSQUITTO))

    @property
    def node_names(self) -> list[str]:
        """The nodes' names in the state record (``rabbitmq-1`` ...), in start order."""
        return [name for name in self.specs if name.startswith("rabbitmq-")]

    def start(self) -> Endpoints:
        """Start (or reuse, or revive) the cluster and wait until every node is in it."""
        begun = time.monotonic()
        endpoints = super().start()
        log.info("cluster of %d nodes ready in %.1f s", self.nodes, time.monotonic() - begun)
        return endpoints

    def launch(self, spec: BrokerSpec, state: BrokerState) -> None:
        """Give the node the cluster's Erlang cookie, then start it."""
        if spec.name.startswith("rabbitmq-"):
            self._share_cookie(state)
        super().launch(spec, state)

    def _share_cookie(self, state: BrokerState) -> None:
        homes = [self.store.ensure_dir(name, "home") for name in self.node_names]
        known = [home / COOKIE for home in homes if (home / COOKIE).is_file()]
        cookie = known[0].read_text().strip() if known else secrets.token_hex(20)
        for home in homes:
            if not (home / COOKIE).is_file():
                self.store.write_private(home / COOKIE, cookie, mode=0o400)

    def _wait_ready(self, state: BrokerState, specs: Any) -> None:
        super()._wait_ready(state, specs)
        if any(spec.name.startswith("rabbitmq-") for spec in specs):
            self._wait_clustered(state)

    def _wait_clustered(self, state: BrokerState) -> None:
        """Every node answers: now wait until each node's API sees all of them running."""
        from mqkit.clients.management import ManagementClient

        wanted = {node_name(state, i) for i in range(1, self.nodes + 1)}
        deadline = time.monotonic() + self.settings.startup_timeout
        seen: dict[str, list[str]] = {}
        while True:
            for index in range(1, self.nodes + 1):
                try:
                    nodes = ManagementClient(self.address(state, f"management-{index}")).get(
                        "nodes", timeout=5.0)
                    seen[node_name(state, index)] = sorted(
                        n["name"] for n in nodes if n.get("running"))
                except BrokerConnectionError as exc:
                    seen[node_name(state, index)] = [f"no answer: {exc.message}"]
            if all(set(names) == wanted for names in seen.values()):
                report(f"RabbitMQ cluster of {self.nodes} nodes formed")
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        logs = "\n".join(self.broker_logs(self.specs[name], state, 10)
                         for name in self.node_names)
        raise BrokerTimeout(
            f"The RabbitMQ nodes did not form one cluster within "
            f"{self.settings.startup_timeout:.0f} s (cluster backend). Each node sees running: "
            + "; ".join(f"{node}: {', '.join(names)}" for node, names in seen.items())
            + f"\nLast log lines:\n{logs}",
            hint="A node that booted alone keeps its own cluster: `mqkit down` and "
                 "`mqkit up --nodes N` again; raise MQKIT_STARTUP_TIMEOUT on a slow machine.")

    # -- addresses ------------------------------------------------------------------------

    def endpoints(self, state: BrokerState) -> Endpoints:
        """The nodes' AMQP URLs as one failover list; node 1's management API; Mosquitto."""
        nodes = [int(name.rsplit("-", 1)[1]) for name in state.brokers
                 if name.startswith("rabbitmq-")]
        amqp = ",".join(self.url(state, f"amqp-{i}") for i in nodes)
        management = self.url(state, f"management-{nodes[0]}") if nodes else ""
        mqtt = self.url(state, "mqtt") if "mqtt" in state.ports else ""
        return Endpoints(amqp_url=amqp, mqtt_url=mqtt, management_url=management,
                         backend=self.name)

    # -- nodes ------------------------------------------------------------------------------

    def stop_node(self, node: int | str, *, kill: bool = False) -> bool:
        """Stop one node's process (SIGTERM, or SIGKILL with ``kill``), keeping its data.

        As a maintenance or a crash would: the other nodes go on, and the next
        :meth:`start` (or ``mqkit up``) starts it again and it rejoins. True when it ran.
        """
        state = self._require_state()
        return self.halt(self.specs[self._node(node)], state, kill=kill)

    def _node(self, node: int | str) -> str:
        name = f"rabbitmq-{node}" if isinstance(node, int) or str(node).isdigit() else node
        if name not in self.node_names:
            raise ConfigError(f"The cluster has no node {node!r}.",
                              hint=f"Use one of: {', '.join(self.node_names)}.")
        return name

    def restart(self, broker: str = "all") -> Endpoints:
        """Restart ``all``, ``mosquitto``, ``rabbitmq`` (every node) or one ``rabbitmq-N``."""
        names = {"all": list(self.specs), "rabbitmq": self.node_names}.get(broker)
        names = names or [broker if broker == "mosquitto" else self._node(broker)]
        with self.store.locked():
            state = self._require_state()
            specs = [self.specs[name] for name in names]
            self._halt_all(state, specs)
            self._launch(state, specs)
            self._wait_ready(state, specs)
            return self.endpoints(state)

    def kill(self, broker: str) -> None:
        """SIGKILL one node (``rabbitmq`` is node 1) or Mosquitto, as a crash would."""
        name = broker if broker == "mosquitto" else self._node(
            self.node_names[0] if broker == "rabbitmq" else broker)
        state = self._require_state()
        if not self.halt(self.specs[name], state, kill=True):
            raise BrokerNotRunning(f"{self.specs[name].title} is not running (cluster backend).",
                                   hint="Start it again with `mqkit up`.")

    def logs(self, broker: str, lines: int = 20) -> str:
        """One node's log, or every node's under a heading each for ``rabbitmq``."""
        if broker not in ("rabbitmq", *self.node_names):
            return super().logs(broker, lines)
        state = self.store.load()
        names = self.node_names if broker == "rabbitmq" else [broker]
        parts = []
        for name in names:
            spec = self.specs[name]
            text = (self.broker_logs(spec, state, lines) if state is not None
                    else self.leftover_logs(spec, lines))
            parts.append(f"== {name} ==\n{text}")
        return "\n".join(parts)

    def describe(self, spec: BrokerSpec, state: BrokerState, is_running: bool) -> str:
        """``pid N, port P, node NAME`` for a node; as the process backend for Mosquitto."""
        text = super().describe(spec, state, is_running)
        if spec.name.startswith("rabbitmq-"):
            text += f", node {node_name(state, int(spec.name.rsplit('-', 1)[1]))}"
        return text

    # -- stopping -----------------------------------------------------------------------------

    def _halt_all(self, state: BrokerState, specs: list[BrokerSpec]) -> None:
        from concurrent.futures import ThreadPoolExecutor  # only when stopping

        # Nodes stop together: a cluster stops in one node's shutdown time (about 6 s here).
        with ThreadPoolExecutor(max(1, len(specs))) as pool:
            list(pool.map(lambda spec: self.halt(spec, state), specs))

    def _discard_recorded(self, state: BrokerState) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor  # only when stopping

        nodes = [self.specs[name] for name in state.brokers if name.startswith("rabbitmq-")
                 and name in self.specs]
        # The nodes together, then Mosquitto, epmd last (a node unregisters as it stops).
        with ThreadPoolExecutor(max(1, len(nodes))) as pool:
            halted = list(pool.map(
                lambda spec: _terminate(state.pids.get(spec.name),
                                        self._commands(spec, state)[-1].marker), nodes))
        stopped = [spec.name for spec, was in zip(nodes, halted, strict=True) if was]
        if "mosquitto" in state.brokers:
            main = self._commands(MOSQUITTO, state)[-1]
            if _terminate(state.pids.get(main.name), main.marker):
                stopped.append("mosquitto")
        if _terminate(state.pids.get("epmd"), str(state.ports.get("epmd", ""))):
            stopped.append("epmd")
        return stopped

    def forget_secrets(self, state: BrokerState) -> None:
        """Remove configs, the password file and every node's Erlang cookie; logs stay."""
        super().forget_secrets(state)
        for name in self.node_names:
            (self.store.dir / name / "home" / COOKIE).unlink(missing_ok=True)


def _recorded_nodes(settings: Settings) -> int:
    state = StateStore(settings.state_dir, ClusterBackend.name).load()
    if state is None:
        return 0
    return sum(1 for name in state.brokers if name.startswith("rabbitmq-"))


def start_cluster(nodes: int = DEFAULT_NODES, **settings: Any) -> Endpoints:
    """Start a local RabbitMQ cluster of ``nodes`` nodes and a Mosquitto (or reuse them).

    Args:
        nodes: the cluster's size (2 to 7).
        **settings: any :class:`~mqkit.config.Settings` field, e.g. ``state_dir=...``.

    Raises:
        BrokerStartError: a node did not start, or the nodes did not form one cluster (with
            the nodes' last log lines). Nothing that was started keeps running.

    Example:
        >>> endpoints = start_cluster(3)                      # doctest: +SKIP
    """
    resolved = Settings.from_env(**settings)
    backend = ClusterBackend(resolved, nodes)
    recorded = _recorded_nodes(resolved)
    if recorded and recorded != nodes:
        raise ConfigError(f"A cluster of {recorded} nodes runs already; {nodes} were asked for.",
                          hint="Stop it first with `mqkit down`.")
    return backend.start()
