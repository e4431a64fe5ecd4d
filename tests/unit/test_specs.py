import base64
import hashlib

import pytest

from mqkit.brokers.ports import choose_ports, free_port, is_port_free
from mqkit.brokers.specs import RABBITMQ, SPECS, mosquitto_password_line, new_password, render
from mqkit.exceptions import MQKitError, PortInUseError


def test_passwords_are_random_and_long_enough():
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    # token_urlsafe(24): 24 random bytes = 192 bits
    assert all(len(base64.urlsafe_b64decode(p + "==")) == 24 for p in passwords)


def test_mosquitto_password_line_is_pbkdf2_sha512():
    line = mosquitto_password_line("alice", "s3cret")
    user, rest = line.rstrip("\n").split(":", 1)
    _, kind, iterations, salt, digest = rest.split("$")
    assert (user, kind, iterations) == ("alice", "7", "101")
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", base64.b64decode(salt), 101, 64)
    assert base64.b64decode(digest) == expected


def test_rendered_configs_have_no_placeholders_left():
    rabbit = render(RABBITMQ.template, bind="127.0.0.1", amqp_port=1, management_port=2,
                    memory="256MiB")
    assert "listeners.tcp.1 = 127.0.0.1:1" in rabbit
    assert "management.tcp.ip = 127.0.0.1" in rabbit
    assert "$" not in rabbit
    mosq = render(SPECS["mosquitto"].template, bind="127.0.0.1", mqtt_port=3,
                  password_file="/p", data_dir="/d", log_dest="stdout")
    assert "listener 3 127.0.0.1" in mosq
    assert "allow_anonymous false" in mosq


def test_port_in_use_is_refused_with_a_hint():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not is_port_free(port)
        with pytest.raises(PortInUseError) as info:
            choose_ports({"amqp": port})
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "MQKIT_AMQP_PORT=0" in str(info.value)
    assert isinstance(info.value, MQKitError)


def test_free_ports_are_distinct():
    ports = choose_ports({"a": 0, "b": 0, "c": 0, "d": 0})
    assert len(set(ports.values())) == 4
    assert is_port_free(free_port())
