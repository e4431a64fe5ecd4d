"""mqkit: real RabbitMQ and Mosquitto brokers for messaging labs in JupyterLab.

Example:
    >>> import mqkit
    >>> endpoints = mqkit.start_brokers()   # doctest: +SKIP
    >>> endpoints.amqp_url                  # doctest: +SKIP
    'amqp://mqkit:...@127.0.0.1:40123/%2F'
"""

import logging

from mqkit.admin import Admin, cleanup
from mqkit.brokers.ctl import rabbitmqctl_command
from mqkit.brokers.launcher import (
    broker_status,
    doctor,
    kill_broker,
    restart_broker,
    stop_brokers,
)
from mqkit.clients import amqp_connection, mqtt_client, notebook_connection
from mqkit.clients import register as register_worker
from mqkit.config import Settings
from mqkit.endpoints import Endpoints
from mqkit.exceptions import (
    AuthenticationError,
    BrokerConnectionError,
    BrokerNotRunning,
    BrokerRefused,
    BrokerStartError,
    ConfigError,
    ConnectionLost,
    DuplicateClientId,
    InvalidExchangeType,
    MissingDependency,
    MQKitError,
    QueueRefused,
)
from mqkit.notebook import start_brokers

__version__ = "0.1.0"

# The errors a student meets in the labs are here, so a cell can catch them by name.
__all__ = [
    "Admin",
    "AuthenticationError",
    "BrokerConnectionError",
    "BrokerNotRunning",
    "BrokerRefused",
    "BrokerStartError",
    "ConfigError",
    "ConnectionLost",
    "DuplicateClientId",
    "Endpoints",
    "InvalidExchangeType",
    "MQKitError",
    "MissingDependency",
    "QueueRefused",
    "Settings",
    "amqp_connection",
    "broker_status",
    "cleanup",
    "doctor",
    "kill_broker",
    "mqtt_client",
    "notebook_connection",
    "rabbitmqctl_command",
    "register_worker",
    "restart_broker",
    "start_brokers",
    "stop_brokers",
]

# Library code logs, never prints; applications decide where logs go.
logging.getLogger(__name__).addHandler(logging.NullHandler())
