"""binder/start boots the brokers in the background when it starts the notebook server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import require

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env["MQKIT_STATE_DIR"] = str(state_dir)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _mqkit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqkit", *args], env=env, text=True,
                          capture_output=True, timeout=180, check=False)


def test_binder_start_prestarts_for_the_notebook_server_only(tmp_path):
    require(os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK),
            "rabbitmq-server is not installed")
    require(Path(sys.executable).with_name("jupyter").exists(), "jupyter is not installed")
    state_dir = tmp_path / "state"
    env = _env(state_dir)
    try:
        other = subprocess.run(["bash", str(ROOT / "binder" / "start"), "true"], env=env,
                               timeout=30, check=False)
        assert other.returncode == 0
        time.sleep(1)  # a background launch would have written its state by now
        assert not (state_dir / "process" / "state.json").exists(), "prestarted for `true`"

        started = time.monotonic()
        server = subprocess.run(["bash", str(ROOT / "binder" / "start"), "jupyter",
                                 "--version"], env=env, capture_output=True, timeout=60,
                                check=False)
        assert server.returncode == 0
        assert time.monotonic() - started < 20, "the server start waited for the brokers"
        deadline = time.monotonic() + 15
        while not (state_dir / "process" / "state.json").exists():
            assert time.monotonic() < deadline, "no background launch began"
            time.sleep(0.1)  # polling for the background launch's state file
        up = _mqkit("up", "--json", env=env)  # what lab 00's first cell does: waits, reuses
        assert up.returncode == 0, up.stderr
        assert json.loads(up.stdout)["backend"] == "process"
        status = json.loads(_mqkit("status", "--json", env=env).stdout)
        assert [b["is_running"] for b in status["brokers"]] == [True, True]
    finally:
        _mqkit("down", env=env)
