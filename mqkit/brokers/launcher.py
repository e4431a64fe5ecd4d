"""Getting brokers: choose a backend, start or reuse brokers, stop them, and diagnose.

Example:
    >>> import mqkit
    >>> endpoints = mqkit.start_brokers()          # doctest: +SKIP
    >>> endpoints.backend                           # doctest: +SKIP
    'process'
"""

from __future__ import annotations

import logging
from typing import Any

from mqkit.brokers.base import Availability, Backend, BrokerStatus
from mqkit.brokers.cluster import ClusterBackend, start_cluster
from mqkit.brokers.docker import DockerBackend
from mqkit.brokers.external import ExternalBackend
from mqkit.brokers.process import ProcessBackend
from mqkit.config import Settings
from mqkit.endpoints import Endpoints
from mqkit.exceptions import (
    BackendUnavailable,
    BrokerNotRunning,
    BrokerStartError,
    ConfigError,
    NoBackendError,
)

log = logging.getLogger(__name__)

#: Every backend by name (the Docker SDK itself is imported only when Docker is used).
BACKENDS: dict[str, type[Backend]] = {
    "external": ExternalBackend,
    "docker": DockerBackend,
    "process": ProcessBackend,
    "cluster": ClusterBackend,
}
#: Backends that mqkit itself runs brokers with, in the order ``auto`` prefers them.
MANAGED = ("docker", "process")
#: Where ``auto`` looks for brokers mqkit already runs (a cluster only when asked for).
RUNNING = ("cluster", "process", "docker")


def get_backend(name: str, settings: Settings | None = None) -> Backend:
    """Instantiate a backend by name (``external``, ``docker`` or ``process``)."""
    return BACKENDS[name](settings or Settings.from_env())


def start_brokers(backend: str | None = None, *, nodes: int = 1, **settings: Any) -> Endpoints:
    """Start RabbitMQ and Mosquitto, or reuse running ones, and return their endpoints.

    With ``backend="auto"`` (the default, or ``MQKIT_BACKEND``): an external broker when
    ``MQKIT_AMQP_URL`` is set; else brokers mqkit already runs; else Docker when an engine
    answers; else local processes when the binaries are installed.

    Args:
        backend: ``auto``, ``external``, ``docker`` or ``process``.
        nodes: more than 1 starts a local RabbitMQ cluster of that many nodes (process
            backend; see :mod:`mqkit.brokers.cluster`); its AMQP URL lists every node.
        **settings: any :class:`~mqkit.config.Settings` field, e.g. ``startup_timeout=120``.

    Raises:
        NoBackendError: no backend can run here (the message lists why, for each).
        BrokerStartError: a broker did not start (with its last log lines).

    Example:
        >>> endpoints = start_brokers()                                   # doctest: +SKIP
        >>> pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))  # doctest: +SKIP
    """
    resolved = Settings.from_env(backend=backend, **settings)
    if nodes > 1:
        if resolved.backend not in ("auto", "process"):
            raise ConfigError(f"A cluster of {nodes} nodes runs on the process backend, not on "
                              f"the {resolved.backend} backend.",
                              hint="Drop --backend (or MQKIT_BACKEND), or ask for --nodes 1.")
        return start_cluster(nodes, **settings)
    if resolved.backend != "auto":
        return get_backend(resolved.backend, resolved).start()
    if resolved.has_external:
        return get_backend("external", resolved).start()
    reasons = []
    for name in RUNNING:
        chosen = get_backend(name, resolved)
        if chosen.has_state():
            endpoints = chosen.running()
            if endpoints is not None:
                return endpoints
            # A launch under way (another notebook, `mqkit lab`'s prestart) or brokers to
            # revive: wait for that one (start() takes the state directory's lock) rather
            # than launch a second pair elsewhere.
            try:
                return chosen.start()
            except (BackendUnavailable, BrokerStartError) as exc:
                log.warning("auto: the %s brokers could not be revived (%s)", name, exc.message)
                reasons.append(Availability(name, False, exc.message, exc.hint or ""))
    for name in MANAGED:
        chosen = get_backend(name, resolved)
        availability = chosen.availability()
        if not availability.is_available:
            reasons.append(availability)
            continue
        log.info("auto: using the %s backend", name)
        if name == MANAGED[-1]:
            return chosen.start()
        try:
            return chosen.start()
        except (BackendUnavailable, BrokerStartError) as exc:
            # An engine that answers but cannot run the brokers (no image and no registry,
            # no bridge network...) should not stop a machine that has the binaries.
            log.warning("auto: the %s backend failed (%s); trying the next one",
                        name, exc.message)
            reasons.append(Availability(name, False, exc.message, exc.hint or ""))
    raise NoBackendError(
        "No way to get a broker on this machine:\n" + "\n".join(
            f"  - {a.backend}: {a.reason}. {a.hint}" for a in reasons),
        hint="Install Docker, or RabbitMQ and Mosquitto (`apt-get install rabbitmq-server "
             "mosquitto`), or set MQKIT_AMQP_URL and MQKIT_MQTT_URL to a classroom broker.")


def stop_brokers(backend: str | None = None, **settings: Any) -> list[str]:
    """Stop the brokers mqkit started (never external ones); return what was stopped.

    With ``auto`` both the docker and the process backend are asked.
    """
    resolved = Settings.from_env(backend=backend, **settings)
    names = RUNNING if resolved.backend == "auto" else (resolved.backend,)
    stopped: list[str] = []
    for name in names:
        chosen = get_backend(name, resolved)
        if name == "external" or chosen.has_state():
            stopped += [f"{name}:{item}" for item in chosen.stop()]
    return stopped


def active_backend(backend: str | None = None, **settings: Any) -> Backend:
    """The backend whose brokers are in use now (for restart, kill, status and logs).

    Raises:
        BrokerNotRunning: mqkit runs no brokers and none is configured.
    """
    resolved = Settings.from_env(backend=backend, **settings)
    if resolved.backend != "auto":
        return get_backend(resolved.backend, resolved)
    if resolved.has_external:
        return get_backend("external", resolved)
    for name in RUNNING:
        chosen = get_backend(name, resolved)
        if chosen.has_state():
            return chosen
    raise BrokerNotRunning("mqkit runs no brokers.",
                           hint="Start them with mqkit.start_brokers() or `mqkit up`.")


def broker_status(backend: str | None = None, **settings: Any) -> dict[str, Any]:
    """What runs now: the backend, each broker's state, and the endpoints if all is up."""
    try:
        chosen = active_backend(backend, **settings)
    except BrokerNotRunning:
        return {"backend": None, "brokers": [], "endpoints": None}
    statuses: list[BrokerStatus] = chosen.status()
    endpoints = chosen.running() if all(s.is_running for s in statuses) else None
    return {"backend": chosen.name, "brokers": statuses, "endpoints": endpoints}


def restart_broker(broker: str = "all", backend: str | None = None) -> Endpoints:
    """Restart ``rabbitmq``, ``mosquitto`` or ``all`` where mqkit runs them (data is kept)."""
    return active_backend(backend).restart(broker)


def kill_broker(broker: str, backend: str | None = None) -> None:
    """Kill one broker abruptly (SIGKILL), for fault demonstrations."""
    active_backend(backend).kill(broker)


def doctor(**settings: Any) -> list[Availability]:
    """For each backend: can it run here, and if not, why and how to fix it."""
    resolved = Settings.from_env(**settings)
    return [get_backend(name, resolved).availability() for name in ("external", *MANAGED)]
