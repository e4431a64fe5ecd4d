"""What every backend provides: :class:`Availability`, :class:`BrokerStatus`, :class:`Backend`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from mqkit.config import Settings
from mqkit.endpoints import Endpoints

BROKERS = ("rabbitmq", "mosquitto")


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
            f"Nothing was done: these brokers are shared ({self.name} backend), mqkit does "
            f"not run them, and to {action} them is the instructor's job.",
            hint="Read along: the lab says what would happen. To try it yourself, run the "
                 "lab on brokers of your own (`mqkit up` on your machine).")


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
