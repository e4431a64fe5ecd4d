"""What every backend provides: :class:`Endpoints`, :class:`Availability`, :class:`Backend`."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from mqkit.config import Settings
from mqkit.urls import BrokerAddress, parse_amqp_urls, parse_url

BROKERS = ("rabbitmq", "mosquitto")


@dataclass(frozen=True)
class Endpoints:
    """Where the brokers are: three URLs with credentials, and the backend that runs them.

    Example:
        >>> import pika
        >>> endpoints = mqkit.start_brokers()                              # doctest: +SKIP
        >>> pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))  # doctest: +SKIP

    Attributes:
        amqp_url: ``amqp://user:pass@127.0.0.1:PORT/%2F`` (commas separate failover URLs).
        mqtt_url: ``mqtt://user:pass@127.0.0.1:PORT``.
        management_url: ``http://user:pass@127.0.0.1:PORT``, empty when there is none.
        backend: ``docker``, ``process`` or ``external``.
    """

    amqp_url: str
    mqtt_url: str
    management_url: str
    backend: str

    def to_dict(self) -> dict[str, str]:
        """The JSON object ``mqkit up --json`` prints."""
        return asdict(self)

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def amqp(self) -> BrokerAddress:
        """The first (primary) AMQP address."""
        return parse_amqp_urls(self.amqp_url)[0]

    @property
    def mqtt(self) -> BrokerAddress:
        """The MQTT address."""
        return parse_url(self.mqtt_url, ("mqtt", "mqtts"), "mqtt_url")

    @property
    def management(self) -> BrokerAddress | None:
        """The management API address, or ``None`` when the backend has none."""
        if not self.management_url:
            return None
        return parse_url(self.management_url, ("http", "https"), "management_url")

    def __repr__(self) -> str:
        # Keep passwords out of notebook outputs and logs.
        mgmt = self.management.redacted() if self.management else ""
        return (f"Endpoints(amqp={self.amqp.redacted()}, mqtt={self.mqtt.redacted()}, "
                f"management={mgmt}, backend={self.backend!r})")


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; ``reason`` and ``hint`` explain a ``False``."""

    backend: str
    is_available: bool
    reason: str
    hint: str = ""


@dataclass(frozen=True)
class BrokerStatus:
    """One broker as a backend sees it (for ``mqkit status``)."""

    broker: str
    is_running: bool
    detail: str


class Backend(ABC):
    """A way to get both brokers. Subclasses: docker, process, external.

    Args:
        settings: resolved settings (see :class:`mqkit.config.Settings`).
    """

    name: ClassVar[str]
    #: False for backends that never start or stop anything (external).
    manages_brokers: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def has_state(self) -> bool:
        """True when this backend has started brokers that were not stopped since."""
        return False

    @abstractmethod
    def availability(self) -> Availability:
        """Tell whether this backend can run on this machine, and if not, why."""

    @abstractmethod
    def running(self) -> Endpoints | None:
        """Endpoints of brokers this backend already runs and that answer, else ``None``."""

    @abstractmethod
    def start(self) -> Endpoints:
        """Start both brokers (or reuse running ones) and wait until they are ready."""

    @abstractmethod
    def stop(self) -> list[str]:
        """Stop everything this backend started; return what was stopped."""

    @abstractmethod
    def status(self) -> list[BrokerStatus]:
        """The state of each broker."""

    def restart(self, broker: str = "all") -> Endpoints:
        """Restart one broker (``rabbitmq`` or ``mosquitto``) or both, keeping data.

        Raises:
            BackendUnavailable: the backend does not run the brokers itself.
        """
        raise self._not_managed("restart")

    def kill(self, broker: str) -> None:
        """Kill one broker abruptly (SIGKILL), for fault demonstrations."""
        raise self._not_managed("kill")

    def logs(self, broker: str, lines: int = 20) -> str:
        """The last ``lines`` log lines of one broker ('' when unknown)."""
        return ""

    def _not_managed(self, action: str) -> Exception:
        from mqkit.exceptions import BackendUnavailable

        return BackendUnavailable(
            f"The {self.name} backend cannot {action} brokers: mqkit does not run them.",
            hint="Ask whoever runs the shared broker, or use the docker or process backend.")


def check_broker_name(broker: str, allow_all: bool = False) -> tuple[str, ...]:
    """Validate a broker name and return the brokers it designates."""
    from mqkit.exceptions import ConfigError

    if allow_all and broker == "all":
        return BROKERS
    if broker not in BROKERS:
        choices = (*BROKERS, "all") if allow_all else BROKERS
        raise ConfigError(f"Unknown broker {broker!r}.", hint=f"Use one of: {', '.join(choices)}.")
    return (broker,)


def as_dict(statuses: list[BrokerStatus]) -> list[dict[str, Any]]:
    """Statuses as plain dicts, for ``mqkit status --json``."""
    return [asdict(status) for status in statuses]
