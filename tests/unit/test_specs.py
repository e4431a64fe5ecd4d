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


def _launch(tmp_path, in_container, bind="127.0.0.1"):
    from mqkit.brokers.specs import Launch
    from mqkit.brokers.state import BrokerState
    from mqkit.config import Settings

    state = BrokerState("process", "mqkit", "pw", {"amqp": 1, "management": 2, "mqtt": 3,
                                                  "dist": 4, "epmd": 5}, nodename="n@localhost")
    return Launch(state, tmp_path, Settings.from_env(env={}, rabbitmq_memory="256MiB"),
                  in_container=in_container, bind=bind, ports=state.ports)


def test_rendered_configs_have_no_placeholders_left(tmp_path):
    files = RABBITMQ.files(_launch(tmp_path, in_container=False))
    rabbit = files["rabbitmq.conf"]
    assert "listeners.tcp.1 = 127.0.0.1:1" in rabbit
    assert "management.tcp.ip = 127.0.0.1" in rabbit
    assert "vm_memory_high_watermark.absolute = 256MiB" in rabbit
    assert "default_user = mqkit" in rabbit
    assert "$" not in rabbit
    assert files["enabled_plugins"] == "[rabbitmq_management].\n"
    mosq = SPECS["mosquitto"].files(_launch(tmp_path, in_container=False))
    assert "listener 3 127.0.0.1" in mosq["mosquitto.conf"]
    assert "allow_anonymous false" in mosq["mosquitto.conf"]
    assert f"password_file {tmp_path / 'passwd'}" in mosq["mosquitto.conf"]
    assert mosq["passwd"].startswith("mqkit:$7$")


def test_container_configs_use_mount_points_and_image_users(tmp_path):
    launch = _launch(tmp_path, in_container=True, bind="0.0.0.0")
    rabbit = RABBITMQ.files(launch)["rabbitmq.conf"]
    assert "listeners.tcp.1 = 0.0.0.0:1" in rabbit
    assert "default_user" not in rabbit  # the official image takes RABBITMQ_DEFAULT_USER
    recipe = RABBITMQ.container(launch)
    assert recipe.env == {"RABBITMQ_DEFAULT_USER": "mqkit", "RABBITMQ_DEFAULT_PASS": "pw"}
    assert recipe.mounts["rabbitmq.conf"] == "/etc/rabbitmq/rabbitmq.conf"
    mosq = SPECS["mosquitto"].files(launch)
    # The password file is copied in, owned by mosquitto (not mounted with config/).
    assert "password_file /mosquitto/passwd" in mosq["config/mosquitto.conf"]
    assert SPECS["mosquitto"].container(launch).copies == {
        "passwd": ("/mosquitto/passwd", "mosquitto")}
    assert "passwd" in mosq
    assert "log_dest stderr" in mosq["config/mosquitto.conf"]
    # Host networking: Erlang's node, distribution port and epmd stay on loopback, and the
    # node name stays short (...@localhost).
    host = RABBITMQ.container(_launch(tmp_path, in_container=True))
    assert host.env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    assert host.env["RABBITMQ_DIST_PORT"] == "4"
    assert host.env["RABBITMQ_USE_LONGNAME"] == "false"


def test_process_commands_keep_erlang_on_loopback(tmp_path):
    binaries = {"epmd": "/bin/epmd", "rabbitmq-server": "/bin/rabbitmq-server"}
    epmd, server = RABBITMQ.commands(_launch(tmp_path, in_container=False), binaries)
    assert epmd.argv == ["/bin/epmd", "-address", "127.0.0.1", "-port", "5"]
    assert server.env["RABBITMQ_NODE_IP_ADDRESS"] == "127.0.0.1"
    assert server.env["RABBITMQ_NODENAME"] == "n@localhost"
    assert "inet_dist_use_interface {127,0,0,1}" in server.env[
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]


def test_template_placeholders_must_all_be_given():
    with pytest.raises(KeyError):
        render("mosquitto/mosquitto.conf.template", bind="127.0.0.1")


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
