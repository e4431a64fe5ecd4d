"""Admin's namespace, limit and policy calls against the real RabbitMQ."""

from __future__ import annotations

import uuid

import pika.exceptions
import pytest

from mqkit import clients
from mqkit.admin import Admin
from mqkit.exceptions import AuthenticationError, ConfigError
from mqkit.urls import amqp_url, http_url

pytestmark = pytest.mark.integration


def test_a_namespace_is_scoped_limited_capped_and_removed_whole(brokers):
    admin = Admin(brokers)
    assert "administrator" in admin.whoami()["tags"]
    name, password = f"ns-{uuid.uuid4().hex[:8]}", "s3cret-pw"
    address, manage = brokers.amqp, brokers.management
    admin.create_namespace(name, name, password, description="a test namespace")
    try:
        own = Admin(http_url(manage.host, manage.port, name, password))
        assert own.whoami() == {"name": name, "tags": ["management"]}
        assert [v["name"] for v in own.vhosts()] == [name]
        with pytest.raises(AuthenticationError):
            own.queues("/")
        admin.set_vhost_limit(name, "max-connections", 5)
        admin.set_vhost_limit(name, "max-queues", 1)
        assert admin.vhost_limits(name) == {"max-connections": 5, "max-queues": 1}
        admin.clear_vhost_limit(name, "max-connections")
        assert admin.vhost_limits(name) == {"max-queues": 1}
        with pytest.raises(ConfigError):
            admin.set_vhost_limit(name, "max-bananas", 1)
        admin.set_operator_policy(name, "caps", {"max-length": 2})
        assert [p["name"] for p in admin.operator_policies(name)] == ["caps"]
        with pytest.raises(AuthenticationError):  # a management user sets no policies
            own.set_operator_policy(name, "caps", {"max-length": 1000})
        url = amqp_url(address.host, address.port, name, password, name)
        connection = clients.amqp_connection(url)
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("one", durable=True)
        for number in range(4):
            channel.basic_publish("", "one", str(number).encode())
        assert channel.queue_declare("one", passive=True).method.message_count == 2
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            channel.queue_declare("two", durable=True)  # max-queues 1
        admin.delete_operator_policy(name, "caps")
        assert admin.operator_policies(name) == []
    finally:
        admin.delete_namespace(name, name, reason="test over")
    assert name not in {v["name"] for v in admin.vhosts()}
    assert name not in {u["name"] for u in admin.users()}
    with pytest.raises(pika.exceptions.AMQPError):  # closed by the broker: pika says so
        connection.sleep(5.0)
    admin.delete_namespace(name, name)  # gone already: nothing to do, no error
