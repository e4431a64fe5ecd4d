"""The `mqkit` command as a user runs it: a real process, real brokers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pika
import pytest

from mqkit.brokers.ports import is_listening
from tests.helpers import listening_sockets, require

pytestmark = pytest.mark.integration


def mqkit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqkit", *args], env=env, text=True,
                          capture_output=True, timeout=180, check=False)


@pytest.fixture
def cli_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env |= {"MQKIT_STATE_DIR": str(tmp_path / "state"), "MQKIT_BACKEND": "process"}
    return env


def test_up_json_then_down_leaves_nothing(cli_env, tmp_path):
    require(os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK),
            "rabbitmq-server is not installed")
    up = mqkit("up", "--json", env=cli_env)
    assert up.returncode == 0, up.stderr
    endpoints = json.loads(up.stdout)
    assert set(endpoints) == {"amqp_url", "mqtt_url", "management_url", "backend"}
    assert endpoints["backend"] == "process"
    assert endpoints["mqtt_url"].startswith("mqtt://mqkit:")
    connection = pika.BlockingConnection(pika.URLParameters(endpoints["amqp_url"]))
    connection.close()

    again = mqkit("up", "--json", env=cli_env)
    assert json.loads(again.stdout) == endpoints

    status = mqkit("status", "--json", env=cli_env)
    report = json.loads(status.stdout)
    assert status.returncode == 0
    assert [b["is_running"] for b in report["brokers"]] == [True, True]
    pids = {int(b["detail"].split()[1].rstrip(",")) for b in report["brokers"]}

    down = mqkit("down", env=cli_env)
    assert down.returncode == 0
    assert "process:rabbitmq" in down.stdout
    ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in
             (endpoints["amqp_url"], endpoints["mqtt_url"], endpoints["management_url"])]
    assert not any(is_listening(port) for port in ports)
    assert listening_sockets(pids) == []
    assert not (tmp_path / "state" / "process").exists()

    after = mqkit("status", env=cli_env)
    assert after.returncode == 1
    assert "mqkit up" in after.stdout


def test_errors_are_one_clear_line_not_a_traceback(cli_env):
    cli_env["MQKIT_BACKEND"] = "kubernetes"
    result = mqkit("up", env=cli_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("mqkit: error: Unknown backend 'kubernetes'")
    assert "Hint:" in result.stderr


def test_doctor_reports_every_backend(cli_env, tmp_path):
    cli_env["DOCKER_HOST"] = f"unix://{tmp_path}/none.sock"
    result = mqkit("doctor", env=cli_env)
    lines = result.stdout.splitlines()
    assert any(line.startswith("[no ] external") for line in lines)
    assert any(line.startswith("[no ] docker") for line in lines)
    assert any("fix:" in line and "Docker" in line for line in lines)
    process_ok = os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK)
    assert any(line.startswith(f"[{'ok ' if process_ok else 'no '}] process") for line in lines)
    assert result.returncode == (0 if process_ok else 1)


def test_doctor_checks_the_security_of_running_brokers(cli_env, broker_state_dir):
    cli_env["MQKIT_STATE_DIR"] = str(broker_state_dir)  # the session's running brokers
    result = mqkit("doctor", env=cli_env)
    security = [line for line in result.stdout.splitlines() if "security" in line]
    assert security == ["[ok ] security  process brokers: listeners on loopback only, guest "
                        "refused, anonymous MQTT refused"], result.stdout


def test_doctor_without_brokers_says_security_is_checked_later(cli_env):
    result = mqkit("doctor", env=cli_env)
    assert "[-- ] security  no brokers run now" in result.stdout


def test_kill_without_brokers_says_how_to_start(cli_env):
    result = mqkit("kill", "rabbitmq", env=cli_env)
    assert result.returncode == 1
    assert "mqkit up" in result.stderr
