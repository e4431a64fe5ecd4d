"""The classroom's RabbitMQ, reached as an administrator through its management API.

``mqkit classroom`` runs on the classroom server against a RabbitMQ that is already there:
a department broker given by an administrator's management URL (``--admin-url`` or
``MQKIT_MANAGEMENT_URL``), or, for a rehearsal, the brokers mqkit itself runs. The AMQP port
written into the cards is the broker's own AMQP listener, read from the management API,
unless the instructor names another one (a broker behind a port forward).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mqkit.admin import Admin
from mqkit.config import Settings
from mqkit.endpoints import Endpoints
from mqkit.exceptions import AuthenticationError, BrokerNotRunning, ConfigError
from mqkit.urls import BrokerAddress, parse_amqp_urls, parse_url


@dataclass(frozen=True)
class ClassBroker:
    """The classroom's RabbitMQ: an administrator's client and where students reach it.

    Attributes:
        admin: management API client with administrator rights.
        management: the management API's address (with the administrator's credentials).
        amqp_host: the AMQP host as the administrator reaches it.
        amqp_port: the AMQP port written into the cards.
        failover: further nodes of a cluster (``host:port``), written into the cards after
            the first: every mqkit client tries them in turn.
    """

    admin: Admin
    management: BrokerAddress
    amqp_host: str
    amqp_port: int
    failover: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``scheme://host:port`` of the management API: which broker a classroom lives on."""
        return f"{self.management.scheme}://{self.management.host}:{self.management.port}"

    @classmethod
    def from_endpoints(cls, endpoints: Endpoints) -> ClassBroker:
        """The brokers of :func:`mqkit.start_brokers` (their user is an administrator)."""
        if not endpoints.management_url:
            raise ConfigError("These brokers have no management API, which the classroom "
                              "needs to create vhosts and users.",
                              hint="Use mqkit's own brokers (`mqkit up`) or pass --admin-url.")
        amqp, *others = parse_amqp_urls(endpoints.amqp_url)
        return cls(Admin(endpoints), endpoints.management, amqp.host, amqp.port,
                   tuple(f"{node.host}:{node.port}" for node in others))

    @classmethod
    def from_admin_url(cls, url: str, amqp_port: int | None = None) -> ClassBroker:
        """A broker given by an administrator's management URL.

        Args:
            url: ``http://admin:password@host:15672``.
            amqp_port: the AMQP port students use; default: the broker's AMQP listener.

        Raises:
            ConfigError: a malformed URL, or a broker without an AMQP listener.
            BrokerConnectionError: the management API does not answer.
        """
        address = parse_url(url, ("http", "https"), "--admin-url / MQKIT_MANAGEMENT_URL")
        admin = Admin(url)
        # First: a user who is no administrator sees no listeners, which would mislead.
        _require_administrator(admin, f"{address.scheme}://{address.host}:{address.port}")
        if amqp_port is None:
            listeners = admin.overview().get("listeners") or []
            ports = sorted({int(item["port"]) for item in listeners
                            if item.get("protocol") == "amqp"})
            if not ports:
                raise ConfigError(f"The broker at {address.redacted()} lists no plain AMQP "
                                  "listener.", hint="Name the port students use with "
                                                    "--amqp-port.")
            amqp_port = ports[0]
        return cls(admin, address, address.host, amqp_port)

    def check_administrator(self) -> None:
        """Raise unless the management user may create vhosts, users and policies.

        Raises:
            AuthenticationError: wrong credentials, or a user without the administrator tag.
            BrokerConnectionError: the management API does not answer.
        """
        _require_administrator(self.admin, self.key)


def parse_nodes(text: str) -> list[str]:
    """``"mq2.example.edu:5672,mq3.example.edu:5672"`` → the nodes, checked (IPv6 in brackets).

    The further AMQP nodes of a department's cluster, as students reach them, for the
    cards (after the first node, the broker's own address or ``--public-host``).

    Raises:
        ConfigError: a node that is not ``HOST:PORT`` with a port from 1 to 65535.
    """
    nodes = []
    for item in (part.strip() for part in text.split(",")):
        host, _, port = item.rpartition(":")
        bare_ipv6 = ":" in host and not (host.startswith("[") and host.endswith("]"))
        if (not host or not port.isdigit() or not 1 <= int(port) <= 65535 or "/" in host
                or bare_ipv6):
            raise ConfigError(f"The cluster node {item!r} is not HOST:PORT.",
                              hint="List the other nodes' AMQP addresses, comma-separated: "
                                   "--cluster-nodes mq2.example.edu:5672,mq3.example.edu:5672.")
        nodes.append(f"{host}:{int(port)}")
    return nodes


def _require_administrator(admin: Admin, where: str) -> None:
    me = admin.whoami()
    if "administrator" not in me["tags"]:
        raise AuthenticationError(
            f"The management user {me['name']!r} at {where} has the tags "
            f"{me['tags'] or 'none'}; a classroom needs an administrator to create vhosts, "
            "users, limits and policies.",
            hint="Pass --admin-url (or MQKIT_MANAGEMENT_URL) with an administrator's user "
                 "and password; a student's card URL will not do.")


def connect(admin_url: str | None = None, amqp_port: int | None = None, *,
            start: bool = False) -> ClassBroker:
    """The classroom's RabbitMQ: ``admin_url``, else ``MQKIT_MANAGEMENT_URL``, else mqkit's own.

    Args:
        admin_url: an administrator's management URL.
        amqp_port: the AMQP port for the cards (default: the broker's AMQP listener).
        start: without a URL, start mqkit's own brokers when none run (``create``);
            otherwise only running ones are used (``list``, ``remove``).

    Raises:
        BrokerNotRunning: no URL, and mqkit runs no brokers (with ``start=False``).
    """
    from mqkit.brokers import launcher

    url = admin_url or Settings.from_env().management_url
    if url:
        return ClassBroker.from_admin_url(url, amqp_port)
    if start:
        endpoints = launcher.start_brokers()
    else:
        endpoints = launcher.broker_status()["endpoints"]
        if endpoints is None:
            raise BrokerNotRunning(
                "No classroom broker: no --admin-url, no MQKIT_MANAGEMENT_URL, and mqkit runs "
                "no brokers.", hint="Pass --admin-url http://ADMIN:PASSWORD@HOST:15672 (or "
                                    "start mqkit's own brokers with `mqkit up`).")
    broker = ClassBroker.from_endpoints(endpoints)
    return broker if amqp_port is None else replace(broker, amqp_port=amqp_port)
