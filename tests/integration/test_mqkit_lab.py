"""`mqkit lab` as a student runs it: brokers, JupyterLab with the management proxy, a clean exit.

A real ``mqkit lab`` process starts the process-backend brokers and JupyterLab on a free
loopback port with a token; the test waits for ``/api/status``, reaches the RabbitMQ
management API through jupyter-server-proxy, stops ``mqkit lab`` the way a user does
(Ctrl-C to the terminal's process group, or SIGTERM), and checks the exit message and that
the brokers still run (they are stopped at the end).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from mqkit.brokers.ports import free_port, is_listening
from tests.browser.jupyter_server import JupyterServer, stop_process_group, wait_for_status
from tests.helpers import require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):
    """One state dir for the module: the second `mqkit lab` reuses the first one's brokers."""
    require(os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK),
            "rabbitmq-server is not installed")
    base = tmp_path_factory.mktemp("mqkit-lab")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env.update(MQKIT_STATE_DIR=str(base / "state"), MQKIT_BACKEND="process",
               JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"))
    (base / "labs").mkdir()
    yield env, base
    subprocess.run([sys.executable, "-m", "mqkit", "down"], env=env, capture_output=True,
                   timeout=120, check=False)


def _status(env):
    done = subprocess.run([sys.executable, "-m", "mqkit", "status", "--json"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    return json.loads(done.stdout)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_lab_serves_jupyter_and_leaves_brokers_running(lab_env, stop):
    env, base = lab_env
    port, token = free_port(), os.urandom(12).hex()
    log = base / f"lab-{stop}.log"
    command = [sys.executable, "-m", "mqkit", "lab", "--dir", str(base / "labs"), "--",
               "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        # JupyterLab answers without waiting for the brokers (they start in the background).
        wait_for_status(url, token, process, log, timeout=150)
        server = JupyterServer(url, token, process, log)

        status, body = server.get("/server-proxy/servers-info")
        assert status == 200, body[:300]
        entries = {s["name"]: s for s in json.loads(body)["server_processes"]}
        assert entries["rabbitmq-management"]["launcher_entry"]["title"] == "RabbitMQ management"

        # The brokers boot in the background meanwhile: `mqkit up` waits for what is left
        # (as a lab's first start_brokers() does) and gets the same brokers, not a second pair.
        up = subprocess.run([sys.executable, "-m", "mqkit", "up", "--json"], env=env, text=True,
                            capture_output=True, timeout=150, check=False)
        assert up.returncode == 0, up.stderr
        endpoints = _status(env)["endpoints"]
        assert endpoints == json.loads(up.stdout)
        management = endpoints["management_url"]
        credentials = management.split("//", 1)[1].split("@", 1)[0]
        auth = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
        status, body = server.get("/rabbitmq-management/api/overview", headers=auth, timeout=30)
        assert status == 200, body[:300]
        assert json.loads(body)["management_version"]

        if stop == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        else:
            process.send_signal(signal.SIGTERM)  # to mqkit only, as `kill PID` does
        assert process.wait(60) == 0
    finally:
        stop_process_group(process)

    output = log.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}/lab" in output  # JupyterLab's URL is printed
    assert "The brokers keep running (process backend); `mqkit down` stops them." in output
    report = _status(env)
    assert report["backend"] == "process"
    assert all(broker["is_running"] for broker in report["brokers"]), report
    assert report["endpoints"]["management_url"] == management


def test_management_proxy_explains_when_no_broker_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env.update(MQKIT_STATE_DIR=str(tmp_path / "empty"), MQKIT_BACKEND="process")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mqkit.jupyter_proxy", "--port", str(port)],
                               env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not is_listening(port) and time.monotonic() < deadline:
            assert process.poll() is None, "the forwarder exited"
            time.sleep(0.05)  # polling interval
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        assert caught.value.code == 503
        assert "mqkit.start_brokers()" in caught.value.read().decode()
    finally:
        stop_process_group(process)
