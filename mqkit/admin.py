"""RabbitMQ's management HTTP API: overview, topology, vhosts, users, permissions, limits.

Requests go through :class:`~mqkit.clients.management.ManagementClient`. Everything returns
the API's JSON (dicts and lists) except :meth:`Admin.topology`, which gives a
:class:`Topology` for drawing.

Message counts in the management API are statistics, refreshed every few seconds (5 s by
default), so a queue declared or published to a moment ago may show an old count.
:func:`fetch_topology` therefore asks the broker itself (a passive ``queue_declare``) for the
exact number of ready messages.

Example:
    >>> admin = Admin(mqkit.start_brokers())                  # doctest: +SKIP
    >>> admin.create_vhost("student-42")                      # doctest: +SKIP
    >>> admin.create_user("student-42", "secret")             # doctest: +SKIP
    >>> admin.set_permissions("student-42", "student-42")     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mqkit.clients.amqp import amqp_connection
from mqkit.clients.management import ManagementClient
from mqkit.exceptions import ConfigError, MQKitError, ResourceNotFound
from mqkit.urls import BrokerAddress, amqp_url

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExchangeInfo:
    """An exchange: its name and type (``direct``, ``topic``, ``fanout``, ``headers``)."""

    name: str
    type: str
    durable: bool = True


@dataclass(frozen=True)
class QueueInfo:
    """A queue and its message count (``None`` when unknown)."""

    name: str
    messages: int | None = None
    durable: bool = True
    exclusive: bool = False
    consumers: int | None = None


@dataclass(frozen=True)
class BindingInfo:
    """A binding from an exchange to a queue or to another exchange."""

    source: str
    destination: str
    destination_type: str = "queue"
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    """The exchanges, queues and bindings of one vhost."""

    exchanges: list[ExchangeInfo]
    queues: list[QueueInfo]
    bindings: list[BindingInfo]
    vhost: str = "/"


class Admin:
    """Administration and reading through RabbitMQ's management API.

    Every request goes through :class:`~mqkit.clients.management.ManagementClient` (one
    error mapping for all of mqkit).

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints` or a management URL
            ``http://user:pass@127.0.0.1:PORT``.
        timeout: seconds per HTTP request.

    Raises:
        ConfigError: the endpoints have no management URL, or it is malformed.
    """

    def __init__(self, endpoints_or_url: Endpoints | str, timeout: float = 10.0) -> None:
        if endpoints_or_url is None:
            raise ConfigError("Admin needs the brokers' endpoints.",
                              hint="endpoints = mqkit.start_brokers(); Admin(endpoints).")
        self.api = ManagementClient(endpoints_or_url, timeout=timeout)
        self.address: BrokerAddress = self.api.address
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Admin({self.address.redacted()})"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        """Send one request to ``/api/<path>``; return the decoded JSON (``None`` if empty).

        Raises:
            AuthenticationError: HTTP 401 or 403.
            ResourceNotFound: HTTP 404 (unknown vhost, user, queue or exchange).
            ConfigError: HTTP 400 (a bad argument).
            BrokerConnectionError: no answer, or a server error.
        """
        return self.api.request(method, path, body, headers)

    def get(self, path: str) -> Any:
        """GET ``/api/<path>``."""
        return self.request("GET", path)

    # -- reading ---------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Broker version, node, message rates and object totals."""
        return self.get("overview")  # type: ignore[no-any-return]

    def vhosts(self) -> list[dict[str, Any]]:
        """All virtual hosts."""
        return self.get("vhosts")  # type: ignore[no-any-return]

    def exchanges(self, vhost: str = "/") -> list[dict[str, Any]]:
        """Exchanges of ``vhost`` (including the default ``""`` and ``amq.*`` ones)."""
        return self.get(f"exchanges/{_q(vhost)}")  # type: ignore[no-any-return]

    def queues(self, vhost: str = "/") -> list[dict[str, Any]]:
        """Queues of ``vhost`` with ``messages``, ``messages_ready``, ``consumers`` (stats)."""
        return self.get(f"queues/{_q(vhost)}")  # type: ignore[no-any-return]

    def queue(self, name: str, vhost: str = "/") -> dict[str, Any]:
        """One queue (durable, exclusive, arguments, statistics)."""
        return self.get(f"queues/{_q(vhost)}/{_q(name)}")  # type: ignore[no-any-return]

    def bindings(self, vhost: str = "/") -> list[dict[str, Any]]:
        """Bindings of ``vhost`` (the implicit default-exchange ones included)."""
        return self.get(f"bindings/{_q(vhost)}")  # type: ignore[no-any-return]

    def users(self) -> list[dict[str, Any]]:
        """All users (names and tags)."""
        return self.get("users")  # type: ignore[no-any-return]

    def permissions(self, vhost: str | None = None) -> list[dict[str, Any]]:
        """Permissions of one vhost, or of all."""
        path = "permissions" if vhost is None else f"vhosts/{_q(vhost)}/permissions"
        return self.get(path)  # type: ignore[no-any-return]

    def connections(self) -> list[dict[str, Any]]:
        """Open client connections (``client_properties.connection_name`` names mqkit's)."""
        return self.get("connections")  # type: ignore[no-any-return]

    def close_connection(self, name: str, reason: str = "closed by mqkit.admin") -> None:
        """Force-close one client connection by its server-side name (fault demos)."""
        with contextlib.suppress(ResourceNotFound):  # already gone
            self.request("DELETE", f"connections/{_q(name)}", headers={"X-Reason": reason})

    def topology(self, vhost: str = "/", *, include_defaults: bool = False) -> Topology:
        """Exchanges, queues and bindings of ``vhost`` (counts are management statistics).

        Args:
            vhost: the virtual host.
            include_defaults: keep the default exchange and the ``amq.*`` exchanges.
        """
        def shown(name: str) -> bool:
            return include_defaults or not (name == "" or name.startswith("amq."))

        exchanges = [ExchangeInfo(e["name"], e["type"], bool(e.get("durable", True)))
                     for e in self.exchanges(vhost) if shown(e["name"])]
        queues = [QueueInfo(q["name"], q.get("messages"), bool(q.get("durable", True)),
                            bool(q.get("exclusive", False)), q.get("consumers"))
                  for q in self.queues(vhost)]
        bindings = [BindingInfo(b["source"], b["destination"], b["destination_type"],
                                b.get("routing_key", ""), dict(b.get("arguments") or {}))
                    for b in self.bindings(vhost) if shown(b["source"])]
        key = lambda item: item.name  # noqa: E731
        return Topology(sorted(exchanges, key=key), sorted(queues, key=key),
                        sorted(bindings, key=lambda b: (b.source, b.destination,
                                                        b.routing_key)), vhost)

    # -- changing --------------------------------------------------------------------

    def create_vhost(self, name: str, description: str = "") -> None:
        """Create a virtual host (no error when it exists)."""
        self.request("PUT", f"vhosts/{_q(name)}", {"description": description})

    def delete_vhost(self, name: str, *, missing_ok: bool = True) -> None:
        """Delete a virtual host and everything in it."""
        self._delete(f"vhosts/{_q(name)}", missing_ok)

    def create_user(self, name: str, password: str, tags: str | list[str] = "") -> None:
        """Create or update a user; ``tags`` e.g. ``"management"`` or ``"administrator"``."""
        tag_text = ",".join(tags) if isinstance(tags, list) else tags
        self.request("PUT", f"users/{_q(name)}", {"password": password, "tags": tag_text})

    def delete_user(self, name: str, *, missing_ok: bool = True) -> None:
        """Delete a user."""
        self._delete(f"users/{_q(name)}", missing_ok)

    def set_permissions(self, vhost: str, user: str, configure: str = ".*", write: str = ".*",
                        read: str = ".*") -> None:
        """Grant ``user`` configure/write/read permissions (regular expressions) on ``vhost``.

        Raises:
            ConfigError: the vhost or user does not exist.
        """
        self.request("PUT", f"permissions/{_q(vhost)}/{_q(user)}",
                     {"configure": configure, "write": write, "read": read})

    def clear_permissions(self, vhost: str, user: str, *, missing_ok: bool = True) -> None:
        """Remove ``user``'s permissions on ``vhost``."""
        self._delete(f"permissions/{_q(vhost)}/{_q(user)}", missing_ok)

    def whoami(self) -> dict[str, Any]:
        """The user this client acts as: ``name`` and ``tags`` (a list)."""
        me = self.get("whoami")
        tags = me.get("tags") or []
        # RabbitMQ before 3.9 gives the tags as one comma-separated string.
        me["tags"] = [t for t in tags.split(",") if t] if isinstance(tags, str) else list(tags)
        return me  # type: ignore[no-any-return]

    def vhost_limits(self, vhost: str) -> dict[str, int]:
        """The limits set on ``vhost`` (``max-connections``, ``max-queues``), by name."""
        found = self.get(f"vhost-limits/{_q(vhost)}") or []
        return {name: int(value) for entry in found
                for name, value in (entry.get("value") or {}).items()}

    def set_vhost_limit(self, vhost: str, name: str, value: int) -> None:
        """Set one vhost limit: ``max-connections`` or ``max-queues`` (``-1``: no limit).

        Raises:
            ConfigError: an unknown limit name or a value the broker rejects.
        """
        self.request("PUT", f"vhost-limits/{_q(vhost)}/{_q(name)}", {"value": int(value)})

    def clear_vhost_limit(self, vhost: str, name: str, *, missing_ok: bool = True) -> None:
        """Remove one vhost limit."""
        self._delete(f"vhost-limits/{_q(vhost)}/{_q(name)}", missing_ok)

    def operator_policies(self, vhost: str) -> list[dict[str, Any]]:
        """The operator policies of ``vhost``."""
        return self.get(f"operator-policies/{_q(vhost)}")  # type: ignore[no-any-return]

    def set_operator_policy(self, vhost: str, name: str, definition: dict[str, Any], *,
                            pattern: str = ".*", apply_to: str = "queues",
                            priority: int = 0) -> None:
        """Create or replace an operator policy on ``vhost``.

        Operator policies are set by an administrator and combine with the users' own
        policies and queue arguments: for a numeric limit such as ``max-length`` the lower
        value wins, so a user without the ``policymaker`` tag cannot raise it.

        Args:
            vhost: the virtual host.
            name: the policy's name.
            definition: e.g. ``{"max-length": 10000, "max-length-bytes": 16777216}``.
            pattern: regular expression over queue names (default: every queue).
            apply_to: ``queues`` (operator policies apply to queues only).
            priority: among several matching operator policies, the highest wins.
        """
        self.request("PUT", f"operator-policies/{_q(vhost)}/{_q(name)}",
                     {"pattern": pattern, "definition": definition, "apply-to": apply_to,
                      "priority": priority})

    def delete_operator_policy(self, vhost: str, name: str, *, missing_ok: bool = True) -> None:
        """Delete an operator policy."""
        self._delete(f"operator-policies/{_q(vhost)}/{_q(name)}", missing_ok)

    def user_connections(self, user: str) -> list[dict[str, Any]]:
        """The open AMQP connections of one user."""
        return [c for c in self.connections() if c.get("user") == user]

    def close_user_connections(self, user: str, reason: str = "closed by mqkit.admin") -> int:
        """Force-close every connection of ``user``; return how many there were."""
        found = self.user_connections(user)
        for connection in found:
            self.close_connection(connection["name"], reason)
        return len(found)

    def create_namespace(self, vhost: str, user: str, password: str, *, description: str = "",
                         tags: str = "management") -> None:
        """Create ``vhost`` and ``user`` with every permission on that vhost and no other.

        With the ``management`` tag the user reads its own vhost through the management API
        (and sees nothing of other vhosts); it cannot create vhosts, users or policies.
        """
        self.create_vhost(vhost, description=description)
        self.create_user(user, password, tags=tags)
        self.set_permissions(vhost, user)

    def delete_namespace(self, vhost: str, user: str, *,
                         reason: str = "namespace removed by mqkit") -> None:
        """Close ``user``'s connections, then delete ``vhost`` and ``user`` (gone ones are fine).

        Every step is tried even when one fails; the first failure is raised at the end.

        Raises:
            MQKitError: a step failed (the management API refused or did not answer).
        """
        failures: list[MQKitError] = []
        steps = (lambda: self.close_user_connections(user, reason),
                 lambda: self.delete_vhost(vhost), lambda: self.delete_user(user))
        for step in steps:
            try:
                step()
            except MQKitError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    def delete_queue(self, name: str, vhost: str = "/", *, missing_ok: bool = True) -> None:
        """Delete a queue."""
        self._delete(f"queues/{_q(vhost)}/{_q(name)}", missing_ok)

    def delete_exchange(self, name: str, vhost: str = "/", *, missing_ok: bool = True) -> None:
        """Delete an exchange."""
        self._delete(f"exchanges/{_q(vhost)}/{_q(name)}", missing_ok)

    def declare_exchange(self, name: str, vhost: str = "/", exchange_type: str = "direct", *,
                         durable: bool = True) -> None:
        """Declare an exchange (idempotent for the same properties).

        Raises:
            ConfigError: the exchange exists with other properties, or a bad type.
        """
        self.request("PUT", f"exchanges/{_q(vhost)}/{_q(name)}",
                     {"type": exchange_type, "durable": durable, "auto_delete": False,
                      "internal": False, "arguments": {}})

    def declare_queue(self, name: str, vhost: str = "/", *, durable: bool = True,
                      arguments: dict[str, Any] | None = None) -> None:
        """Declare a queue (idempotent for the same properties and arguments).

        Raises:
            ConfigError: the queue exists with other properties or arguments.
        """
        self.request("PUT", f"queues/{_q(vhost)}/{_q(name)}",
                     {"durable": durable, "auto_delete": False, "arguments": arguments or {}})

    def bind_queue(self, queue: str, exchange: str, vhost: str = "/",
                   routing_key: str = "") -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key`` (binding twice is harmless)."""
        self.request("POST", f"bindings/{_q(vhost)}/e/{_q(exchange)}/q/{_q(queue)}",
                     {"routing_key": routing_key, "arguments": {}})

    def take_messages(self, queue: str, vhost: str = "/", count: int = 100) -> list[dict[str, Any]]:
        """Take up to ``count`` messages off ``queue`` for good (acknowledged, not requeued).

        Each is the management API's message object: ``payload`` (text, or base64 when
        ``payload_encoding`` says so), ``properties`` (``user_id``, ``timestamp``, ...),
        ``routing_key``, ``redelivered``.
        """
        return self.request(  # type: ignore[no-any-return]
            "POST", f"queues/{_q(vhost)}/{_q(queue)}/get",
            {"count": count, "ackmode": "ack_requeue_false", "encoding": "auto",
             "truncate": 65536})

    def _delete(self, path: str, missing_ok: bool) -> None:
        try:
            self.request("DELETE", path)
        except ResourceNotFound:
            if not missing_ok:
                raise


def fetch_topology(
    endpoints: Endpoints,
    vhost: str = "/",
    *,
    include_defaults: bool = False,
    exact_counts: bool = True,
) -> Topology:
    """The topology of ``vhost``, with exact ready-message counts from the broker itself.

    Args:
        endpoints: the brokers (from :func:`mqkit.start_brokers`).
        vhost: the virtual host to read.
        include_defaults: keep the default exchange and the ``amq.*`` exchanges.
        exact_counts: ask RabbitMQ (passive ``queue_declare``) for the number of ready
            messages of each non-exclusive queue instead of the management statistics,
            which lag by up to 5 s.
    """
    topology = Admin(endpoints).topology(vhost, include_defaults=include_defaults)
    if not exact_counts or not topology.queues:
        return topology
    counts = _ready_counts(endpoints, vhost, [q.name for q in topology.queues
                                              if not q.exclusive])
    queues = [QueueInfo(q.name, counts.get(q.name, q.messages), q.durable, q.exclusive,
                        q.consumers) for q in topology.queues]
    return Topology(topology.exchanges, queues, topology.bindings, vhost)


def cleanup(endpoints: Endpoints, prefix: str) -> list[str]:
    """Delete the queues and exchanges whose names start with ``prefix``, on purpose.

    Labs clean up only at their start, so what a student built stays for the widgets and
    for grading; this clears one lab's objects when the student wants to start over. Live
    workers of this kernel that consume those queues (inboxes) are stopped first.

    Args:
        endpoints: the brokers; their AMQP URL's vhost is the one cleaned.
        prefix: a name prefix such as ``"lab04."`` (never empty).

    Returns:
        What was deleted: ``queue NAME`` and ``exchange NAME`` entries, sorted.

    Raises:
        ConfigError: an empty prefix, or brokers without the management API.

    Example:
        >>> mqkit.cleanup(endpoints, "lab04.")      # doctest: +SKIP
        ['exchange lab04.stocks', 'queue lab04.AAPL', ...]
    """
    from mqkit.clients.workers import consumers_of, stop

    if not prefix.strip():
        raise ConfigError("cleanup() needs a name prefix, e.g. 'lab04.'.",
                          hint="An empty prefix would delete every queue and exchange.")
    vhost = endpoints.amqp.vhost or "/"
    admin = Admin(endpoints)
    queues = sorted(q["name"] for q in admin.queues(vhost) if q["name"].startswith(prefix))
    for key in consumers_of(queues):
        stop(key)
    deleted = []
    for name in queues:
        admin.delete_queue(name, vhost)
        deleted.append(f"queue {name}")
    for exchange in admin.exchanges(vhost):
        name = exchange["name"]
        if name.startswith(prefix) and not name.startswith("amq."):
            admin.delete_exchange(name, vhost)
            deleted.append(f"exchange {name}")
    log.info("cleaned %d objects with prefix %r in vhost %r", len(deleted), prefix, vhost)
    return sorted(deleted)


def _ready_counts(endpoints: Endpoints, vhost: str, names: list[str]) -> dict[str, int]:
    import pika.exceptions as pe

    first = endpoints.amqp
    url = amqp_url(first.host, first.port, first.username or "", first.password or "", vhost)
    counts: dict[str, int] = {}
    connection = amqp_connection(url, name="mqkit-topology")
    try:
        channel = connection.channel()
        for name in names:
            try:
                counts[name] = channel.queue_declare(name, passive=True).method.message_count
            except pe.ChannelClosedByBroker as exc:  # deleted meanwhile, or locked
                log.debug("no exact count for %r: %r", name, exc)
                channel = connection.channel()
    finally:
        connection.close()
    return counts


def _q(name: str) -> str:
    return quote(name, safe="")


__all__ = [
    "Admin",
    "BindingInfo",
    "ExchangeInfo",
    "QueueInfo",
    "Topology",
    "cleanup",
    "fetch_topology",
]
