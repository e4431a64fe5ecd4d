"""Which broker versions run, and whether mqkit's tests cover them (``mqkit doctor``).

The tested lines are the ones the test suite runs (issue 14): RabbitMQ 3.10 (Debian
bookworm, the process backend), 4.0 (trixie) and 4.3 (sid) as Docker stand-ins; Mosquitto
2.0 (2.0.11 and 2.0.21) and 2.1. A broker of another line may work; it is just untested.

Example:
    >>> is_tested("rabbitmq", "4.3.6"), is_tested("rabbitmq", "3.13.7")
    (True, False)
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)

#: ``major.minor`` lines the test matrix runs (``make test`` the newest, ``make test-matrix``
#: every one), per broker.
TESTED_LINES: dict[str, tuple[str, ...]] = {"rabbitmq": ("3.10", "4.0", "4.3"),
                                            "mosquitto": ("2.0", "2.1")}


@dataclass(frozen=True)
class BrokerVersion:
    """The version a running broker reports (``None`` when it did not answer)."""

    broker: str
    version: str | None
    detail: str = ""

    @property
    def is_tested(self) -> bool:
        """True when the version is of a line the tests run."""
        return self.version is not None and is_tested(self.broker, self.version)


def is_tested(broker: str, version: str) -> bool:
    """True when ``version`` (``4.3.6``, ``mosquitto version 2.1.2``) is of a tested line."""
    number = version.split()[-1]
    return ".".join(number.split(".")[:2]) in TESTED_LINES[broker]


def rabbitmq_version(endpoints: Endpoints, timeout: float = 5.0) -> BrokerVersion:
    """RabbitMQ's version from the management API's overview."""
    from mqkit.admin import Admin

    try:
        return BrokerVersion("rabbitmq",
                             str(Admin(endpoints, timeout=timeout).overview()["rabbitmq_version"]))
    except Exception as exc:  # the doctor reports any failure, it never raises
        return BrokerVersion("rabbitmq", None, f"the management API did not say: {exc}")


def mosquitto_version(endpoints: Endpoints, timeout: float = 5.0) -> BrokerVersion:
    """Mosquitto's version from its retained ``$SYS/broker/version`` topic."""
    from mqkit.clients.mqtt import mqtt_client

    answered, seen = threading.Event(), []
    try:
        client = mqtt_client(endpoints)
    except Exception as exc:
        return BrokerVersion("mosquitto", None, str(exc))

    def on_message(_client, _userdata, message):
        seen.append(message.payload.decode(errors="replace"))
        answered.set()

    client.on_connect = lambda c, *_args: c.subscribe("$SYS/broker/version")
    client.on_message = on_message
    try:
        address = endpoints.mqtt
        client.connect(address.host, address.port)
        client.loop_start()
        answered.wait(timeout)
    except Exception as exc:
        return BrokerVersion("mosquitto", None, f"no answer: {exc}")
    finally:
        client.disconnect()
        client.loop_stop()
    if not seen:
        return BrokerVersion("mosquitto", None, f"no $SYS/broker/version within {timeout:g} s")
    return BrokerVersion("mosquitto", seen[0].split()[-1])


def broker_versions(endpoints: Endpoints, timeout: float = 5.0) -> list[BrokerVersion]:
    """The versions of both brokers behind ``endpoints``."""
    return [rabbitmq_version(endpoints, timeout), mosquitto_version(endpoints, timeout)]
