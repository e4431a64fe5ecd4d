"""Endpoints: where the brokers are, as the URLs every layer passes around.

This is a bottom-layer module: it imports nothing of mqkit but the URL helpers, so the
clients, the broker layer, the widgets and the grader can all depend on it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from mqkit.urls import BrokerAddress, parse_amqp_urls, parse_url


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
