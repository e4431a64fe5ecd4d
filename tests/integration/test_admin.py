import uuid

import pika
import pytest

from mqkit import clients
from mqkit.admin import Admin, fetch_topology
from mqkit.exceptions import AuthenticationError, ConfigError
from mqkit.urls import amqp_url, http_url

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_overview_answers(brokers):
    overview = Admin(brokers).overview()
    assert overview["management_version"]
    assert "object_totals" in overview


def test_vhost_user_and_permissions(brokers):
    admin = Admin(brokers)
    vhost, user, password = unique("vh"), unique("student"), "s3cret"
    admin.create_vhost(vhost)
    admin.create_user(user, password)
    try:
        admin.set_permissions(vhost, user)
        assert any(p["user"] == user for p in admin.permissions(vhost))
        address = brokers.amqp
        connection = clients.amqp_connection(
            amqp_url(address.host, address.port, user, password, vhost))
        channel = connection.channel()
        channel.queue_declare("work", durable=True)
        channel.basic_publish("", "work", b"x", pika.BasicProperties(delivery_mode=2))
        connection.close()
        assert [q["name"] for q in admin.queues(vhost)] == ["work"]
        topology = fetch_topology(brokers, vhost)
        assert [(q.name, q.messages) for q in topology.queues] == [("work", 1)]
        # Scoped to its vhost: refused on the default one.
        with pytest.raises(AuthenticationError):
            clients.amqp_connection(amqp_url(address.host, address.port, user, password, "/"))
    finally:
        admin.delete_user(user)
        admin.delete_vhost(vhost)
    assert vhost not in [v["name"] for v in admin.vhosts()]
    assert user not in [u["name"] for u in admin.users()]


def test_missing_things_and_wrong_credentials(brokers):
    admin = Admin(brokers)
    with pytest.raises(ConfigError):
        admin.queue(unique("missing"))
    with pytest.raises(ConfigError):
        admin.delete_vhost(unique("missing"), missing_ok=False)
    admin.delete_vhost(unique("missing"))  # missing_ok by default
    address = brokers.management
    wrong = Admin(http_url(address.host, address.port, address.username, "wrong"))
    with pytest.raises(AuthenticationError) as caught:
        wrong.overview()
    assert "Hint:" in str(caught.value)


def test_cleanup_removes_one_labs_objects_and_stops_their_inboxes(brokers):
    import uuid

    import pika

    from mqkit import cleanup
    from mqkit.widgets import QueueInbox

    prefix, other = f"clean{uuid.uuid4().hex[:6]}.", f"keep{uuid.uuid4().hex[:6]}"
    connection = pika.BlockingConnection(pika.URLParameters(brokers.amqp_url))
    channel = connection.channel()
    channel.exchange_declare(f"{prefix}ex", exchange_type="fanout", durable=True)
    for queue in (f"{prefix}a", f"{prefix}b", other):
        channel.queue_declare(queue, durable=True)
    inbox = QueueInbox(f"{prefix}a", brokers, key=f"{prefix}inbox")
    try:
        assert cleanup(brokers, prefix) == [f"exchange {prefix}ex", f"queue {prefix}a",
                                            f"queue {prefix}b"]
        assert not inbox.model.is_running  # stopped before its queue went
        names = {q["name"] for q in Admin(brokers).queues()}
        assert other in names
        assert not {f"{prefix}a", f"{prefix}b"} & names
        with pytest.raises(ConfigError, match="prefix"):
            cleanup(brokers, " ")
    finally:
        inbox.close()
        channel.queue_delete(other)
        connection.close()
