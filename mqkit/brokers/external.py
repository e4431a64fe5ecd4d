"""The external backend: a classroom or cluster broker named by ``MQKIT_*_URL`` variables.

mqkit never starts or stops these brokers; it only checks that they answer.
"""

from __future__ import annotations

from mqkit.brokers.base import Availability, Backend, BrokerStatus
from mqkit.brokers.readiness import probe_all
from mqkit.endpoints import Endpoints
from mqkit.exceptions import BackendUnavailable, BrokerConnectionError, ConfigError
from mqkit.urls import parse_amqp_urls, parse_url


class ExternalBackend(Backend):
    """Use brokers someone else runs (``MQKIT_AMQP_URL``, ``MQKIT_MQTT_URL``, ...)."""

    name = "external"
    manages_brokers = False

    def availability(self) -> Availability:
        """Available when both URLs are set, well formed, and every broker accepts them.

        The verdict comes from the same probes :meth:`start` runs: a wrong password or a
        broker that does not answer is a ``False`` with the broker's own words.
        """
        settings = self.settings
        unset = [name for name, value in (("MQKIT_AMQP_URL", settings.amqp_url),
                                          ("MQKIT_MQTT_URL", settings.mqtt_url)) if not value]
        if unset:
            given = [n for n in ("MQKIT_AMQP_URL", "MQKIT_MQTT_URL") if n not in unset]
            reason = f"{' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set"
            if given:
                reason += f" ({given[0]} is)"
            return Availability(self.name, False, reason,
                                hint="Set both to the classroom broker's URLs, e.g. "
                                     "MQKIT_AMQP_URL=amqp://user:pass@broker:5672/vhost and "
                                     "MQKIT_MQTT_URL=mqtt://user:pass@broker:1883.")
        try:
            endpoints = self.endpoints()
            probe_all(endpoints)
        except (ConfigError, BrokerConnectionError) as exc:
            return Availability(self.name, False, exc.message, hint=exc.hint or "")
        return Availability(self.name, True, "the configured brokers accept their credentials")

    def endpoints(self) -> Endpoints:
        """The configured endpoints, validated (nothing is contacted).

        Raises:
            BackendUnavailable: a required URL is missing.
            ConfigError: a URL is malformed.
        """
        settings = self.settings
        if not (settings.amqp_url and settings.mqtt_url):
            raise BackendUnavailable(
                "The external backend needs MQKIT_AMQP_URL and MQKIT_MQTT_URL.",
                hint="Set both (MQKIT_MANAGEMENT_URL too, if the broker has the management "
                     "plugin), or choose another backend.")
        parse_amqp_urls(settings.amqp_url)
        parse_url(settings.mqtt_url, ("mqtt", "mqtts"), "MQKIT_MQTT_URL")
        if settings.management_url:
            parse_url(settings.management_url, ("http", "https"), "MQKIT_MANAGEMENT_URL")
        return Endpoints(settings.amqp_url, settings.mqtt_url, settings.management_url,
                         self.name)

    def running(self) -> Endpoints | None:
        """The endpoints when every configured broker answers, else ``None``."""
        try:
            endpoints = self.endpoints()
            probe_all(endpoints)
        except (BrokerConnectionError, BackendUnavailable, ConfigError):
            return None
        return endpoints

    def start(self) -> Endpoints:
        """Check that the external brokers answer with the given credentials.

        Raises:
            AuthenticationError: a broker refused the credentials in its URL.
            BrokerConnectionError: a broker does not answer.
        """
        endpoints = self.endpoints()
        probe_all(endpoints)
        return endpoints

    def stop(self) -> list[str]:
        """Nothing to stop: mqkit does not run external brokers."""
        return []

    def status(self) -> list[BrokerStatus]:
        """Whether each configured broker answers; for several AMQP URLs, each node."""
        from mqkit.brokers.readiness import probe_amqp, probe_mqtt

        endpoints = self.endpoints()
        nodes = []
        for address in parse_amqp_urls(endpoints.amqp_url):
            try:
                probe_amqp(address)
                nodes.append((True, f"answers at {address.redacted()}"))
            except BrokerConnectionError as exc:
                nodes.append((False, exc.message))
        # A cluster is up while any node answers; the detail names the ones that do not.
        result = [BrokerStatus("rabbitmq", any(ok for ok, _ in nodes),
                               "; ".join(text for _, text in nodes))]
        try:
            probe_mqtt(endpoints.mqtt)
            result.append(BrokerStatus("mosquitto", True,
                                       f"answers at {endpoints.mqtt.redacted()}"))
        except BrokerConnectionError as exc:
            result.append(BrokerStatus("mosquitto", False, exc.message))
        return result
