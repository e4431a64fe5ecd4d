"""Binder, reproduced: a non-root user runs binder/postBuild and binder/start, then labs 00 and 01.

What mybinder.org (repo2docker) does, as far as mqkit cares: the apt packages listed in
``binder/apt.txt`` are installed; the repository is copied into a non-root user's home; that
user's Python environment runs ``binder/postBuild`` from the repository root; the notebook
server is started through ``binder/start``. Here a user ``mqkit-binder`` with its own HOME
does the same with a venv made from the system ``python3``, then executes labs 00 and 01
headless under nbval through ``binder/start``. The brokers must run as that user (process
backend) within RabbitMQ's Binder memory limit, and ``mqkit down`` must leave nothing running.

Needs root (to create the user and install apt packages); skips on a laptop, fails in CI.
To keep it fast, pip takes wheels from a wheelhouse built once from the main venv.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import require

pytestmark = [pytest.mark.binder, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
USER = os.environ.get("MQKIT_TEST_BINDER_USER", "mqkit-binder")
WHEELHOUSE = Path(os.environ.get("MQKIT_TEST_WHEELHOUSE", "/var/cache/mqkit-test-wheelhouse"))
SYSTEM_PYTHON = "/usr/bin/python3"
#: Wheels the user's venv needs beyond the runtime: the build backend and the lab runner.
EXTRA = ["hatchling", "editables", "pytest", "nbval", "pytest-timeout", "ipykernel"]
# The test-only copies: the handed-out notebooks plus expected outputs, so nbval compares.
LABS = ["labs/_test/00-setup.ipynb", "labs/_test/01-connection-channel.ipynb"]
IGNORED = shutil.ignore_patterns(".venv", "venv", ".git", "test-artifacts", "__pycache__",
                                 ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
                                 "*.egg-info", "build", "dist", ".ipynb_checkpoints")


def _apt_packages() -> list[str]:
    lines = (ROOT / "binder" / "apt.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _is_installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                          text=True, check=False)
    return done.returncode == 0 and "install ok installed" in done.stdout


@pytest.fixture(scope="module")
def apt_packages() -> list[str]:
    """binder/apt.txt's packages, installed (as repo2docker does) when missing."""
    require(os.geteuid() == 0, "the Binder test creates a user and installs apt packages: "
            "run it as root (CI does)")
    require(shutil.which("dpkg-query") is not None, "not a Debian-like system (no dpkg)")
    packages = _apt_packages()
    missing = [p for p in packages if not _is_installed(p)]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True,
                           check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
    still = [p for p in packages if not _is_installed(p)]
    assert not still, f"apt.txt packages not installed: {still}"
    return packages


@pytest.fixture(scope="module")
def binder_user(apt_packages) -> pwd.struct_passwd:
    """A non-root user with its own HOME (created once)."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True,
                       capture_output=True)
        return pwd.getpwnam(USER)


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """Wheels for everything ``pip install -e .`` needs on the system python, built once.

    Resolved by the system python itself (Debian's 3.11.2 takes older releases of some
    packages than the main venv's python), so the Binder user installs without an index.
    """
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    stamp = hashlib.sha256(pyproject + " ".join(EXTRA).encode()).hexdigest()[:16]
    done_marker = WHEELHOUSE / f".complete-{stamp}"
    if not done_marker.exists():
        builder = WHEELHOUSE.with_name(WHEELHOUSE.name + "-builder")
        if not (builder / "bin" / "pip").exists():
            subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(builder)], check=True,
                           capture_output=True)
        built = subprocess.run([str(builder / "bin" / "pip"), "wheel", "-q",
                                "-w", str(WHEELHOUSE), str(ROOT), *EXTRA],
                               capture_output=True, text=True, timeout=900, check=False)
        assert built.returncode == 0, built.stderr[-3000:]
        for stale in WHEELHOUSE.glob("mqkit-*.whl"):
            stale.unlink()  # the user installs mqkit from its copy of the repository
        done_marker.touch()
    WHEELHOUSE.chmod(0o755)
    for wheel in WHEELHOUSE.iterdir():
        wheel.chmod(0o644)
    return WHEELHOUSE


def _processes_of(uid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # A zombie runs nothing; it waits for init (here not always quick) to reap it.
            if entry.stat().st_uid == uid and (entry / "stat").read_text().split(
                    ")", 1)[1].split()[0] != "Z":
                found.append((int(entry.name), (entry / "cmdline").read_bytes()
                              .replace(b"\0", b" ").decode(errors="replace")[:200]))
        except OSError:
            continue  # it exited meanwhile
    return found


def _kill_all_of(uid: int) -> None:
    """SIGKILL what runs as the test's own user (left by a failed run of this test)."""
    for pid, _ in _processes_of(uid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_labs_run_under_binder_conditions(binder_user, wheelhouse):
    home = Path(binder_user.pw_dir)
    uid, gid = binder_user.pw_uid, binder_user.pw_gid
    repo, venv = home / "repo", home / "venv"
    # Leftovers of an earlier run of this test (never anything else: the user is ours).
    _kill_all_of(uid)
    for old in (repo, venv, home / ".local" / "state" / "mqkit", home / ".jupyter"):
        shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(ROOT, repo, ignore=IGNORED, symlinks=True)
    for folder, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            os.lchown(os.path.join(folder, name), uid, gid)
    os.chown(home, uid, gid)

    env = {"HOME": str(home), "USER": USER, "LOGNAME": USER, "LANG": "C.UTF-8",
           "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
           "PIP_FIND_LINKS": str(wheelhouse), "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    log: list[str] = []

    def as_user(*command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(command, cwd=repo, env=env, user=uid, group=gid, extra_groups=[],
                              capture_output=True, text=True, timeout=timeout, check=False)
        log.append(f"$ {' '.join(command)}  -> {done.returncode}\n{done.stdout[-4000:]}"
                   f"{done.stderr[-4000:]}")
        return done

    try:
        assert as_user(SYSTEM_PYTHON, "-m", "venv", str(venv)).returncode == 0, log[-1]
        assert as_user("bash", "binder/postBuild", timeout=600).returncode == 0, log[-1]
        # The lab runner (not part of a real Binder image).
        runner = as_user("python", "-m", "pip", "install", "-q", "pytest", "nbval",
                         "pytest-timeout", "ipykernel")
        assert runner.returncode == 0, log[-1]

        started = as_user("binder/start", "env")
        assert "MQKIT_BACKEND=process" in started.stdout, log[-1]
        assert "MQKIT_RABBITMQ_MEMORY=384MiB" in started.stdout, log[-1]

        # -p tests.labs.conftest: nbval ignores text/html, as in run_nbval (see there why).
        labs = as_user("binder/start", "python", "-m", "pytest", "--nbval", *LABS,
                       "--nbval-current-env", "--nbval-sanitize-with",
                       "labs/nbval-sanitize.cfg", "-p", "tests.labs.conftest",
                       "-p", "no:cacheprovider", "-q", "--timeout", "300", timeout=600)
        assert labs.returncode == 0, log[-1]

        # The brokers the labs started run as the Binder user, with Binder's memory limit.
        state_dir = home / ".local" / "state" / "mqkit" / "process"
        state = json.loads((state_dir / "state.json").read_text())
        pids = {name: pid for name, pid in state["pids"].items() if pid}
        assert {"rabbitmq", "mosquitto"} <= set(pids), state["pids"]
        for name, pid in pids.items():
            assert Path(f"/proc/{pid}").stat().st_uid == uid, f"{name} does not run as {USER}"
        conf = (state_dir / "rabbitmq" / "rabbitmq.conf").read_text()
        assert "vm_memory_high_watermark.absolute = 384MiB" in conf
        limit = as_user("binder/start", "python", "-c", _MEMORY_LIMIT)
        assert limit.returncode == 0, log[-1]
        assert int(limit.stdout.strip()) == 384 * 1024 * 1024

        down = as_user("binder/start", "mqkit", "down")
        assert down.returncode == 0, log[-1]
        deadline = time.monotonic() + 20
        while _processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.2)  # polling interval: Erlang helpers exit just after the node
        assert _processes_of(uid) == [], "still running as the Binder user after `mqkit down`"
    except AssertionError:
        print("\n\n".join(log))  # shown by pytest on failure  # noqa: T201
        raise
    finally:
        _kill_all_of(uid)


#: Asks the running RabbitMQ (through mqkit's endpoints) for its memory limit in bytes.
_MEMORY_LIMIT = """
import base64, json, time, urllib.request
import mqkit
management = mqkit.start_brokers().management
request = urllib.request.Request(f"http://{management.host}:{management.port}/api/nodes")
token = base64.b64encode(f"{management.username}:{management.password}".encode()).decode()
request.add_header("Authorization", "Basic " + token)
deadline = time.monotonic() + 60
while True:  # a node reports mem_limit once its first metrics are collected
    with urllib.request.urlopen(request, timeout=30) as response:
        node = json.loads(response.read())[0]
    if "mem_limit" in node or time.monotonic() > deadline:
        break
    time.sleep(0.5)
print(node["mem_limit"])
"""
