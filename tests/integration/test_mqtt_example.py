"""docker/mqtt-python's producer and consumer, run as real processes against a real Mosquitto.

The scripts are what the containers run (``python -u producer.py``); here they run with this
interpreter against the broker mqkit started, configured through the same environment
variables compose.yaml sets. The broker commands of both compose files (password file,
healthcheck) and their mosquitto.conf are run for real with the local Mosquitto tools.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from mqkit.brokers.ports import free_port, is_listening
from tests.helpers import require

pytestmark = pytest.mark.integration

DOCKER = Path(__file__).resolve().parents[2] / "docker"
EXAMPLE = DOCKER / "mqtt-python"
#: Variables the scripts read; the test's own environment must not leak into them.
SCRIPT_VARIABLES = re.compile(r"^(MQTT_|MESSAGE_|EXPECTED_COUNT$|READY_FILE$)")


class Script:
    """producer.py or consumer.py as a child process; its output lines collected as they come."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        clean = {k: v for k, v in os.environ.items() if not SCRIPT_VARIABLES.match(k)}
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(EXAMPLE / f"{name}.py")], env=clean | env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._stderr_lines: queue.Queue[str] = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.process.stdout, self.stdout),
                                              (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))
            if sink is self.stderr:
                self._stderr_lines.put(line)

    def wait_for_log(self, text: str, timeout: float = 15.0) -> None:
        """Block until a stderr line contains ``text`` (fails on exit or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self._stderr_lines.get(timeout=0.1):
                    return
            except queue.Empty:
                if self.process.poll() is not None and self._stderr_lines.empty():
                    break
        pytest.fail(f"{self.name} never logged {text!r}; stderr:\n" + "\n".join(self.stderr))

    def wait_for_output(self, lines: int, timeout: float = 15.0) -> None:
        """Block until stdout has ``lines`` lines."""
        deadline = time.monotonic() + timeout
        while len(self.stdout) < lines and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.stdout) >= lines, f"{self.name} printed {self.stdout}"

    def finish(self, timeout: float = 30.0) -> int:
        """The exit code, once the process ended and its output is read."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} still ran after {timeout} s; stderr:\n"
                        + "\n".join(self.stderr))
        for reader in self._readers:
            reader.join(5)
        return code

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def run_script():
    """Start scripts; whatever still runs at the end of the test is killed."""
    started: list[Script] = []

    def start(name: str, env: dict[str, str]) -> Script:
        script = Script(name, env)
        started.append(script)
        return script

    yield start
    for script in started:
        script.kill()


def topic() -> str:
    return f"test/mqtt-example/{uuid.uuid4().hex}"


def url_env(brokers) -> dict[str, str]:
    return {"MQTT_URL": brokers.mqtt_url}


def split_env(brokers) -> dict[str, str]:
    mqtt = brokers.mqtt
    return {"MQTT_HOST": mqtt.host, "MQTT_PORT": str(mqtt.port),
            "MQTT_USERNAME": mqtt.username, "MQTT_PASSWORD": mqtt.password}


def assert_no_traceback(script: Script) -> None:
    assert not any("Traceback" in line for line in script.stderr), "\n".join(script.stderr)


@pytest.mark.parametrize("address", [url_env, split_env], ids=["MQTT_URL", "MQTT_HOST"])
def test_consumer_receives_exactly_what_the_producer_sent(brokers, run_script, address):
    common = address(brokers) | {"MQTT_TOPIC": topic()}
    consumer = run_script("consumer", common | {"EXPECTED_COUNT": "50"})
    consumer.wait_for_log("subscribed to")
    producer = run_script("producer", common | {"MESSAGE_COUNT": "50",
                                                "MESSAGE_INTERVAL": "0.005"})

    assert producer.finish() == 0, "\n".join(producer.stderr)
    assert consumer.finish() == 0, "\n".join(consumer.stderr)
    sent = [record["payload"] for record in producer.records()]
    received = [record["payload"] for record in consumer.records()]
    assert [payload["seq"] for payload in sent] == list(range(1, 51))
    assert received == sent  # all of them, once each, in order
    assert [record["received"] for record in consumer.records()] == list(range(1, 51))
    assert {record["qos"] for record in consumer.records()} == {1}
    assert_no_traceback(producer)
    assert_no_traceback(consumer)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("role", ["consumer", "producer"])
def test_a_signal_stops_a_running_script_with_exit_0(brokers, run_script, role, signum):
    # Both would run forever: the consumer expects nothing, the producer sends without end.
    env = url_env(brokers) | {"MQTT_TOPIC": topic(), "MESSAGE_COUNT": "0",
                              "MESSAGE_INTERVAL": "0.2"}
    script = run_script(role, env)
    if role == "consumer":
        script.wait_for_log("subscribed to")
    else:
        script.wait_for_output(2)

    started = time.monotonic()
    script.process.send_signal(signum)
    assert script.finish(timeout=10) == 0, "\n".join(script.stderr)
    assert time.monotonic() - started < 5
    assert_no_traceback(script)


@pytest.mark.parametrize("role", ["consumer", "producer"])
def test_a_wrong_password_is_one_clear_line_and_exit_1(brokers, run_script, role):
    mqtt = brokers.mqtt
    env = {"MQTT_URL": f"mqtt://{mqtt.username}:not-the-password@{mqtt.host}:{mqtt.port}",
           "MQTT_TOPIC": topic()}
    script = run_script(role, env)

    assert script.finish(timeout=20) == 1
    errors = [line for line in script.stderr if "refused" in line]
    assert len(errors) == 1, script.stderr
    assert f"{mqtt.host}:{mqtt.port}" in errors[0]
    assert "MQTT_PASSWORD" in errors[0]
    assert not any("not-the-password" in line for line in script.stderr)
    assert_no_traceback(script)
    assert script.stdout == []


@pytest.mark.parametrize(("variable", "value"), [("MQTT_QOS", "3"), ("MESSAGE_COUNT", "ten"),
                                                 ("MQTT_URL", "http://x:y@127.0.0.1:1")])
def test_a_bad_setting_is_one_line_and_exit_2(run_script, variable, value):
    script = run_script("producer", {variable: value})
    assert script.finish(timeout=10) == 2
    assert len(script.stderr) == 1, script.stderr
    assert variable in script.stderr[0]


# -- a broker restart while both run -------------------------------------------------------


@pytest.fixture(scope="module")
def own_brokers(broker_factory):
    """Brokers of this module only: Mosquitto gets restarted."""
    backend = broker_factory("process")
    yield backend
    backend.stop()


@pytest.mark.parametrize("qos", [1, 2])
def test_both_reconnect_and_nothing_is_lost_across_a_broker_restart(own_brokers, run_script,
                                                                    qos):
    """What survives a restart: the broker persists the consumer's session (fixed client id,
    clean session off) and paho re-sends what the broker had not confirmed. QoS 1 is at least
    once (a re-sent message may arrive twice); QoS 2 is exactly once.
    """
    endpoints = own_brokers.start()
    common = url_env(endpoints) | {"MQTT_TOPIC": topic(), "MQTT_QOS": str(qos)}
    consumer = run_script("consumer", common | {
        "MQTT_CLIENT_ID": f"test-consumer-{uuid.uuid4().hex[:8]}",
        "MQTT_CLEAN_SESSION": "false", "EXPECTED_COUNT": "0"})
    consumer.wait_for_log("subscribed to")
    producer = run_script("producer", common | {"MESSAGE_COUNT": "60",
                                                "MESSAGE_INTERVAL": "0.05"})
    producer.wait_for_output(15)

    own_brokers.restart("mosquitto")

    assert producer.finish(timeout=60) == 0, "\n".join(producer.stderr)
    sent = [record["payload"]["seq"] for record in producer.records()]
    assert sent == list(range(1, 61))
    deadline = time.monotonic() + 20
    while missing := set(sent) - {r["payload"]["seq"] for r in consumer.records()}:
        assert time.monotonic() < deadline, f"never received: {sorted(missing)}"
        time.sleep(0.1)
    consumer.process.send_signal(signal.SIGTERM)
    assert consumer.finish() == 0

    received = [record["payload"]["seq"] for record in consumer.records()]
    assert set(received) == set(sent)
    if qos == 2:
        assert sorted(received) == sent  # exactly once
    for script in (producer, consumer):
        assert any("connection lost" in line for line in script.stderr), script.stderr
        assert sum("connected to" in line for line in script.stderr) >= 2, script.stderr
        assert_no_traceback(script)


# -- the broker side of the compose files, run with the local Mosquitto ---------------------


@pytest.mark.parametrize(("compose", "config", "user_variable"), [
    ("mqtt-python/compose.yaml", "mqtt-python/mosquitto.conf", "MQTT_USERNAME"),
    ("compose.yaml", "compose/mosquitto.conf", "BROKER_USERNAME"),
])
def test_compose_password_file_config_and_healthcheck_work(tmp_path, compose, config,
                                                            user_variable):
    """The mosquitto-init command, mosquitto.conf and the healthcheck, with paths and port
    moved into a temporary directory — everything else exactly as compose would run it.
    """
    tools = ("mosquitto", "mosquitto_passwd", "mosquitto_sub")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    require(not missing, f"Mosquitto tools missing: {missing}")
    services = yaml.safe_load((DOCKER / compose).read_text())["services"]
    port = free_port()
    password_variable = user_variable.replace("USERNAME", "PASSWORD")
    env = os.environ | {user_variable: "student", password_variable: "pa ss$word"}

    def as_compose_runs_it(command: str) -> str:
        """Compose turns `$$` into `$`; then our directory and port replace the container's."""
        command = command.replace("$$", "$").replace("/mosquitto/", f"{tmp_path}/")
        if os.geteuid() != 0:  # only root may give the file away; a user keeps it
            command = command.replace("chown mosquitto:mosquitto", "chown $(id -u):$(id -g)")
        return command.replace("-p 1883", f"-p {port}")

    (tmp_path / "auth").mkdir()
    (tmp_path / "data").mkdir()
    init = services["mosquitto-init"]["command"]
    assert init[:2] == ["sh", "-c"]
    subprocess.run(["sh", "-c", as_compose_runs_it(init[2])], env=env, check=True, timeout=30)

    conf = (DOCKER / config).read_text().replace("/mosquitto/", f"{tmp_path}/")
    conf = conf.replace("listener 1883\n", f"listener {port} 127.0.0.1\n")
    if os.geteuid() == 0:  # else mosquitto drops to its own user, which cannot enter tmp_path
        conf += "user root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    broker = subprocess.Popen(["mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while not is_listening(port) and time.monotonic() < deadline:
            assert broker.poll() is None, broker.communicate()[0]
            time.sleep(0.05)
        health = services["mosquitto"]["healthcheck"]["test"]
        assert health[0] == "CMD-SHELL"
        check = ["sh", "-c", as_compose_runs_it(health[1])]
        assert subprocess.run(check, env=env, timeout=10).returncode == 0
        wrong = env | {password_variable: "wrong"}
        assert subprocess.run(check, env=wrong, timeout=10, capture_output=True).returncode != 0
    finally:
        broker.terminate()
        log = broker.communicate(timeout=10)[0]
    assert "Error" not in log, log
