"""Five bad inputs, each an mqkit error naming the cause and the fix; a security self-check."""

from __future__ import annotations

import subprocess
import uuid

import pika.exceptions as pe
import pytest

from mqkit.admin import Admin
from mqkit.brokers.ports import free_port
from mqkit.clients import amqp_connection, mqtt_connect, notebook_connection
from mqkit.errors_amqp import amqp_errors, translate_amqp_error
from mqkit.exceptions import (
    AuthenticationError,
    BrokerConnectionError,
    BrokerRefused,
    InvalidExchangeType,
    QueueRefused,
)
from mqkit.security import _listening_addresses, check_security
from mqkit.urls import amqp_url, mqtt_url
from tests.faults.ledger import Ledger

pytestmark = pytest.mark.integration

#: What RabbitMQ 4.x answers to queue_declare(durable=False, exclusive=False); 3.10 (here)
#: accepts such a queue, so the translation is checked on the broker's words.
RABBITMQ_4_TRANSIENT_QUEUE = (
    "PRECONDITION_FAILED - Feature `transient_nonexcl_queues` is deprecated.\n"
    "By default, this feature can still be used for now.\nIts use will not be permitted "
    "by default in a future minor RabbitMQ version and the feature will be removed from a "
    "future major RabbitMQ version; actual versions to be determined.")


def test_invalid_exchange_type_on_the_real_broker(brokers):
    exchange = f"faults.badtype.{uuid.uuid4().hex[:8]}"
    connection = notebook_connection(brokers.amqp_url, name=exchange)
    try:
        channel = connection.channel()
        with pytest.raises(InvalidExchangeType) as info:
            channel.exchange_declare(exchange, exchange_type="topics")
        error = info.value
        assert error.reply_code in (503, 406)  # 3.x: 503 COMMAND_INVALID; 4.x: 406
        assert "'topics' is not an exchange type" in str(error)
        assert "exchange_type='direct', 'fanout', 'headers', 'topic'" in str(error)
        # The next call works: the notebook connection re-opens what the broker closed.
        channel.exchange_declare(exchange, exchange_type="topic", auto_delete=True)
        channel.exchange_delete(exchange)
    finally:
        connection.close()


def test_invalid_exchange_type_with_plain_pika_and_amqp_errors(brokers):
    connection = amqp_connection(brokers.amqp_url)
    channel = connection.channel()
    with pytest.raises(InvalidExchangeType), amqp_errors("exchange_declare"):
        channel.exchange_declare("faults.badtype.raw", exchange_type="fanoutt")


@pytest.mark.parametrize(("code", "text"), [
    (503, "COMMAND_INVALID - unknown exchange type 'x'"),
    (406, "PRECONDITION_FAILED - invalid exchange type 'x'"),
])
def test_exchange_type_translation_accepts_old_and_new_codes(code, text):
    error = translate_amqp_error(pe.ChannelClosedByBroker(code, text), during="exchange_declare",
                                 args=("ex",))
    assert isinstance(error, InvalidExchangeType)
    assert error.reply_code == code


def test_transient_non_exclusive_queue_refusal_of_rabbitmq_4():
    exc = pe.ChannelClosedByBroker(406, RABBITMQ_4_TRANSIENT_QUEUE)
    error = translate_amqp_error(exc, during="queue_declare", kwargs={"queue": "tasks"})
    assert isinstance(error, QueueRefused)
    assert isinstance(error, BrokerRefused)
    assert "'tasks'" in str(error)
    assert "durable=True" in error.hint
    assert "exclusive=True" in error.hint
    # Other precondition failures (an inequivalent argument) are left to pika.
    other = pe.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg 'durable'")
    assert translate_amqp_error(other, during="queue_declare") is None


def test_wrong_amqp_password(brokers):
    address = brokers.amqp
    with pytest.raises(AuthenticationError) as info:
        amqp_connection(amqp_url(address.host, address.port, address.username, "wrong"))
    assert f"port={address.port}" in str(info.value)
    assert "Hint: Check the credentials" in str(info.value)
    assert "wrong" not in str(info.value)


def test_wrong_mqtt_password(brokers):
    address = brokers.mqtt
    with pytest.raises(AuthenticationError, match="Mosquitto refused user") as info:
        mqtt_connect(mqtt_url(address.host, address.port, address.username, "wrong"),
                     key=f"faults-badpw-{uuid.uuid4().hex[:6]}")
    assert "Hint: Check the user name and password" in str(info.value)


def test_broker_not_running():
    port = free_port()
    with pytest.raises(BrokerConnectionError, match=f"port={port}") as info:
        amqp_connection(amqp_url("127.0.0.1", port, "user", "secret"))
    assert "mqkit up" in str(info.value)
    with pytest.raises(BrokerConnectionError, match=f"port={port}") as info:
        mqtt_connect(mqtt_url("127.0.0.1", port, "user", "secret"), key="faults-no-broker")
    assert "mqkit up" in str(info.value)


def test_security_self_check_passes_on_mqkit_brokers(brokers):
    assert check_security(brokers) == []
    listeners = _listening_addresses(brokers.amqp.port)
    assert listeners
    assert all(a.startswith("127.") for a in listeners)


def test_security_self_check_finds_a_guest_login(fault_backend, faulty):
    admin = Admin(faulty)
    admin.create_user("guest", "guest")
    admin.set_permissions("/", "guest")
    try:
        findings = check_security(faulty)
    finally:
        admin.delete_user("guest")
    assert [f.check for f in findings] == ["guest"]
    assert "delete_user guest" in findings[0].hint
    assert check_security(faulty) == []


def test_security_self_check_finds_anonymous_mqtt(brokers, tmp_path):
    port = free_port()
    (tmp_path / "open.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    mosquitto = subprocess.Popen(["mosquitto", "-c", str(tmp_path / "open.conf")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from mqkit.brokers.readiness import probe_mqtt, wait_until_ready
        from mqkit.endpoints import Endpoints

        open_mqtt = f"mqtt://127.0.0.1:{port}"
        endpoints = Endpoints(amqp_url=brokers.amqp_url, mqtt_url=open_mqtt,
                              management_url=brokers.management_url, backend="external")
        wait_until_ready(lambda: probe_mqtt(endpoints.mqtt), what="Mosquitto",
                         backend="test", timeout=10)
        findings = check_security(endpoints)
    finally:
        mosquitto.terminate()
        mosquitto.wait(10)
    assert [f.check for f in findings] == ["anonymous-mqtt"]
    Ledger().check()  # nothing was published: the accounting is trivially clean
