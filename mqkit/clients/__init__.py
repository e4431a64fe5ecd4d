"""Clients: the one place mqkit builds pika connections, paho clients and HTTP requests.

* :mod:`~mqkit.clients.amqp`: :func:`amqp_connection` (pika, mqkit's error mapping);
* :mod:`~mqkit.clients.notebook`: :func:`notebook_connection`, a connection that survives
  idle cells and broker restarts;
* :mod:`~mqkit.clients.mqtt`: :func:`mqtt_client` and :func:`mqtt_connect` (paho 2);
* :mod:`~mqkit.clients.management`: :class:`ManagementClient` (RabbitMQ's HTTP API);
* :mod:`~mqkit.clients.workers`: the registry that stops a re-run cell's old threads.

A test fails when a pika connection, a paho client or an HTTP request is made anywhere else.
None of these start brokers: the caller passes the :class:`~mqkit.Endpoints` it got from
:func:`mqkit.start_brokers`.
"""

from mqkit.clients.amqp import amqp_connection, amqp_parameters, resolve_amqp_url
from mqkit.clients.management import ManagementClient
from mqkit.clients.mqtt import (
    MQTTLoop,
    mqtt_client,
    mqtt_connect,
    raise_for_connack,
    resolve_mqtt_url,
)
from mqkit.clients.notebook import NotebookChannel, NotebookConnection, notebook_connection
from mqkit.clients.workers import Stoppable, register, stop, stop_all, unregister, workers

__all__ = [
    "MQTTLoop",
    "ManagementClient",
    "NotebookChannel",
    "NotebookConnection",
    "Stoppable",
    "amqp_connection",
    "amqp_parameters",
    "mqtt_client",
    "mqtt_connect",
    "notebook_connection",
    "raise_for_connack",
    "register",
    "resolve_amqp_url",
    "resolve_mqtt_url",
    "stop",
    "stop_all",
    "unregister",
    "workers",
]
