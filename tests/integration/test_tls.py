"""TLS on loopback with a self-signed CA: amqps:// and mqtts:// cards work, wrong CAs fail clearly.

mqkit's own process brokers get TLS listeners besides their plain ones (MQKIT_TLS_CERT_FILE,
MQKIT_TLS_KEY_FILE, MQKIT_AMQPS_PORT, MQKIT_MQTTS_PORT); mqkit's clients verify them against
MQKIT_CA_FILE, as a student's card for a department broker reached over a network would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from mqkit import clients
from mqkit.brokers.ports import free_port
from mqkit.exceptions import BrokerConnectionError
from mqkit.urls import BrokerAddress

pytestmark = pytest.mark.integration


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=mqkit test {name}",
             cwd=folder)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate it signed for localhost and 127.0.0.1, and another CA."""
    if subprocess.run(["which", "openssl"], capture_output=True, check=False).returncode:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("pki")
    _ca(folder, "ca")
    _ca(folder, "other-ca")
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=folder)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "san.cnf",
             cwd=folder)
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return folder


@pytest.fixture(scope="module")
def tls(pki, broker_factory):
    """Started brokers with TLS listeners; their plain endpoints and the TLS URLs."""
    amqps, mqtts = free_port(), free_port()
    backend = broker_factory("process", tls_cert_file=str(pki / "server.pem"),
                             tls_key_file=str(pki / "server.key"), amqps_port=amqps,
                             mqtts_port=mqtts)
    endpoints = backend.start()
    amqp, mqtt = endpoints.amqp, endpoints.mqtt
    return {
        "endpoints": endpoints,
        "amqps": f"amqps://{amqp.username}:{amqp.password}@localhost:{amqps}/%2F",
        "mqtts": f"mqtts://{mqtt.username}:{mqtt.password}@localhost:{mqtts}",
        "https_free": f"https://{amqp.username}:{amqp.password}@localhost:{free_port()}",
    }


def test_amqps_round_trip_verified_against_the_ca(tls, pki, monkeypatch):
    monkeypatch.setenv("MQKIT_CA_FILE", str(pki / "ca.pem"))
    connection = clients.amqp_connection(tls["amqps"])
    try:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.confirm_delivery()
        channel.basic_publish("", queue, b"over TLS")
        method, _, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None
        assert body == b"over TLS"
        assert connection._impl.params.ssl_options is not None  # really TLS, not plain
    finally:
        connection.close()


@pytest.mark.parametrize("ca", ["other-ca.pem", None])
def test_amqps_with_a_ca_that_did_not_sign_it_fails_with_a_hint(tls, pki, monkeypatch, ca):
    if ca:
        monkeypatch.setenv("MQKIT_CA_FILE", str(pki / ca))
    with pytest.raises(BrokerConnectionError) as info:
        clients.amqp_connection(tls["amqps"], timeout=10)
    assert "MQKIT_CA_FILE" in info.value.hint


def test_mqtts_round_trip_verified_against_the_ca(tls, pki, monkeypatch):
    monkeypatch.setenv("MQKIT_CA_FILE", str(pki / "ca.pem"))
    topic = f"tls/{uuid.uuid4().hex[:8]}"
    got, subscribed = [], threading.Event()
    arrived = threading.Event()
    sub = clients.mqtt_client(tls["mqtts"], client_id=f"tls-sub-{uuid.uuid4().hex[:6]}")
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, message: (got.append(message.payload), arrived.set())
    clients.mqtt_connect(client=sub)
    try:
        sub.subscribe(topic, qos=1)
        assert subscribed.wait(10)
        pub = clients.mqtt_client(tls["mqtts"], client_id=f"tls-pub-{uuid.uuid4().hex[:6]}")
        clients.mqtt_connect(client=pub)
        try:
            pub.publish(topic, b"mqtt over TLS", qos=1).wait_for_publish(10)
            assert arrived.wait(10)
        finally:
            pub.loop_stop()
            pub.disconnect()
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert got == [b"mqtt over TLS"]


def test_mqtts_with_another_ca_fails_with_a_hint(tls, pki, monkeypatch):
    monkeypatch.setenv("MQKIT_CA_FILE", str(pki / "other-ca.pem"))
    client = clients.mqtt_client(tls["mqtts"])
    with pytest.raises(BrokerConnectionError) as info:
        clients.mqtt_connect(client=client)
    assert "MQKIT_CA_FILE" in info.value.hint


def test_a_card_of_tls_urls_runs_a_self_check(tls, pki, tmp_path):
    """A kernel with only TLS URLs and the CA file in its environment, as a card gives it."""
    endpoints = tls["endpoints"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")} | {
        "MQKIT_BACKEND": "external", "MQKIT_AMQP_URL": tls["amqps"],
        "MQKIT_MQTT_URL": tls["mqtts"], "MQKIT_MANAGEMENT_URL": endpoints.management_url,
        "MQKIT_CA_FILE": str(pki / "ca.pem"), "MQKIT_STATE_DIR": str(tmp_path / "state")}
    code = ("import mqkit\nfrom mqkit.grading import self_check\n"
            "endpoints = mqkit.start_brokers()\n"
            "print(endpoints.amqp_url.split(':')[0], endpoints.mqtt_url.split(':')[0])\n"
            "print(self_check('00.brokers-reachable', endpoints).line())\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "amqps mqtts"
    assert lines[1].startswith("✔ passed  00.brokers-reachable"), lines


def test_tls_settings_are_checked(tmp_path):
    from mqkit.config import Settings
    from mqkit.exceptions import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        Settings.from_env(env={"MQKIT_CA_FILE": str(tmp_path / "missing.pem")})
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="go together"):
        Settings.from_env(env={"MQKIT_TLS_CERT_FILE": str(cert)})


def test_an_https_url_nobody_answers_gets_the_running_hint(tls, pki, monkeypatch):
    """Nothing listens there with TLS: the error is a plain 'no answer', not a CA hint."""
    monkeypatch.setenv("MQKIT_CA_FILE", str(pki / "ca.pem"))
    from mqkit.admin import Admin

    with pytest.raises(BrokerConnectionError) as info:
        Admin(BrokerAddress("https", "localhost", int(tls["https_free"].rsplit(":", 1)[1]),
                            "u", "p").url()).overview()
    assert "MQKIT_CA_FILE" not in info.value.hint
