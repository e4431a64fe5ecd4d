"""Launching is safe: concurrent starts launch once, a failed launch leaves nothing running
and no password behind, and `mqkit down` finds brokers whose state file was lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mqkit.brokers.process import ProcessBackend
from mqkit.config import Settings
from mqkit.exceptions import BrokerStartError
from tests.helpers import require

pytestmark = pytest.mark.integration


def processes_in(folder: Path) -> list[tuple[int, str]]:
    """Processes whose working directory is inside ``folder`` (what mqkit started there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z" and (cwd == folder or folder in cwd.parents):
                    found.append((int(entry.name), (entry / "comm").read_text().strip()))
            except (OSError, IndexError):
                continue
    return found


def mqkit(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env |= {"MQKIT_STATE_DIR": str(state_dir), "MQKIT_BACKEND": "process"}
    return subprocess.run([sys.executable, "-m", "mqkit", *args], env=env, text=True,
                          capture_output=True, timeout=240, check=False)


@pytest.fixture
def state_dir(tmp_path):
    require(ProcessBackend(Settings.from_env(env={}, state_dir=tmp_path)).availability()
            .is_available, "rabbitmq-server and mosquitto are not installed")
    folder = tmp_path / "state"
    yield folder
    mqkit("down", state_dir=folder)


def test_three_concurrent_ups_launch_once_and_all_succeed(state_dir):
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda _: mqkit("up", "--json", state_dir=state_dir), range(3)))
    assert [run.returncode for run in runs] == [0, 0, 0], [run.stderr for run in runs]
    endpoints = {json.dumps(json.loads(run.stdout), sort_keys=True) for run in runs}
    assert len(endpoints) == 1, "they must share one pair of brokers"
    names = [name for _, name in processes_in(state_dir.resolve())]
    assert names.count("mosquitto") == 1
    assert names.count("epmd") == 1
    assert mqkit("status", state_dir=state_dir).returncode == 0
    down = mqkit("down", state_dir=state_dir)
    assert down.returncode == 0
    assert processes_in(state_dir.resolve()) == []


def test_down_stops_brokers_whose_state_file_was_lost(state_dir):
    assert mqkit("up", state_dir=state_dir).returncode == 0
    (state_dir / "process" / "state.json").unlink()
    assert processes_in(state_dir.resolve())
    down = mqkit("down", state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert "mosquitto" in down.stdout
    assert processes_in(state_dir.resolve()) == []


def test_a_failed_launch_leaves_nothing_running_and_no_password(state_dir):
    # A real failure: RabbitMQ needs several seconds to boot, and gets one.
    backend = ProcessBackend(Settings.from_env(env={}, state_dir=state_dir, startup_timeout=1))
    with pytest.raises(BrokerStartError) as info:
        backend.start()
    assert "mqkit doctor" in str(info.value) or "MQKIT_STARTUP_TIMEOUT" in str(info.value)
    assert processes_in(state_dir.resolve()) == [], "epmd or a broker outlived the failure"
    folder = state_dir / "process"
    for secret in ("rabbitmq/rabbitmq.conf", "mosquitto/passwd", "rabbitmq/home/.erlang.cookie"):
        assert not (folder / secret).exists(), secret
    assert not (folder / "state.json").exists()
    assert backend.logs("rabbitmq"), "the failed broker's log must stay readable"
    again = mqkit("up", state_dir=state_dir)  # and the next start works
    assert again.returncode == 0, again.stderr


def test_simultaneous_start_brokers_calls_share_one_launch(state_dir):
    # Two notebooks' first cells at the same instant: a barrier releases the calls together.
    import threading

    barrier = threading.Barrier(3)

    def start():
        backend = ProcessBackend(Settings.from_env(env={}, state_dir=state_dir))
        barrier.wait()
        return backend.start()

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: start(), range(3)))
    assert len({r.amqp_url for r in results}) == 1
    names = [name for _, name in processes_in(state_dir.resolve())]
    assert names.count("mosquitto") == 1
    assert names.count("epmd") == 1
