"""Hostile submissions graded in the docker sandbox beside an honest one, on real brokers.

The same hostile notebooks as the user sandbox's tests (:mod:`tests.grading.submissions`):
each does lab 01's exercise first (so it has a point to keep), then tries one attack, and
raises ``LEAK: …`` if the attack got anywhere. What an attack could harm is also checked from
outside: the canary vhost, the package files, the containers left.

CI runs a subset (credential hunter, ``setsid`` daemon, memory hog, loopback port reach,
package tamper, and an inspector of the container's confinement); the full set is opt-in:
``MQKIT_TEST_SANDBOX_DOCKER_ALL=1`` (``make test-sandbox-docker-all``). Without a Docker Engine
and the stand-in base image the tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from mqkit.admin import Admin
from mqkit.exceptions import SandboxUnavailable
from mqkit.grading.grader import grade
from mqkit.grading.sandbox import Limits, choose_sandbox
from mqkit.grading.sandbox_docker import LABEL, DockerSandbox, leftover_containers
from tests.grading import submissions
from tests.grading.test_sandbox import (
    PACKAGE,
    assert_package_untampered,
    package_hashes,
    watch_memory_alarm,
)
from tests.helpers import require

pytestmark = [pytest.mark.integration, pytest.mark.docker]

#: The opt-in full set of hostile submissions (``make test-sandbox-docker-all``).
ALL = os.environ.get("MQKIT_TEST_SANDBOX_DOCKER_ALL", "") == "1"

LIMITS = Limits()

INSPECTOR = f"""\
import os, socket
problems = []
if os.getuid() == 0:
    problems.append("runs as root")
if not os.statvfs("/").f_flag & os.ST_RDONLY:
    problems.append("the root file system is writable")
names = sorted(name for _, name in socket.if_nameindex())
if names != ["lo"]:
    problems.append(f"network interfaces {{names}}")
for folder, cap in ((os.path.expanduser("~"), {LIMITS.home_bytes}), ("/tmp", {LIMITS.tmp_bytes})):
    stat = os.statvfs(folder)
    if stat.f_blocks * stat.f_frsize > cap:
        problems.append(f"{{folder}} is not capped at {{cap}} bytes")
if not os.path.exists(os.path.join(os.path.expanduser("~"), "submission.ipynb")):
    problems.append("the submission was not copied in")
if os.path.exists("/root/.local") or os.path.exists("/var/run/docker.sock"):
    problems.append("the grader's home or the Docker socket is there")
if problems:
    raise RuntimeError(f"LEAK: {{problems}}")
print("confined")
"""


@pytest.fixture(scope="module")
def sandbox():
    reason = DockerSandbox.unavailable_reason()
    require(reason is None, f"docker sandbox: {reason}")
    confiner = DockerSandbox(slots=2, limits=LIMITS)
    yield confiner
    confiner.close()


@pytest.fixture(scope="module")
def graded(sandbox, brokers, canary_vhost, listener, tmp_path_factory):
    from mqkit.config import Settings

    secret = f"SECRET-{uuid.uuid4().hex}"
    state = str(Settings.from_env().state_dir)
    hostile = {
        "hunter": submissions.hunter([state, str(Path.home()), "/tmp", "/run"], os.getpid(),
                                     brokers.amqp.password),
        "daemon": submissions.DAEMON,
        "memory": submissions.MEMORY,
        "ports": submissions.ports([listener, 5432, 6379, 4222]),
        "tamper": submissions.tamper(PACKAGE / "grading" / "registry.py"),
        "inspector": INSPECTOR,
    }
    if ALL:
        hostile |= {
            "forkbomb": submissions.FORK_BOMB,
            "disk": submissions.disk(f"fill-{uuid.uuid4().hex[:8]}"),
            "writer": submissions.writer(secret),
            "snooper": submissions.snoop(secret),
            "flooder": submissions.FLOOD,
        }
    notebooks = {"honest": submissions.lab_notebook("01", solution=True)}
    notebooks |= {name: submissions.notebook(submissions.WORK, attack)
                  for name, attack in hostile.items()}
    folder = tmp_path_factory.mktemp("sandbox-docker")
    paths = submissions.write(folder / "in", "01", notebooks)
    before = package_hashes()
    alarms = watch_memory_alarm(brokers)
    try:
        gradebook = grade("01", paths, out=folder / "grades.csv", broker=brokers, workers=2,
                          timeout=30, sandbox=sandbox)
    finally:
        alarms.stop.set()
        alarms.thread.join(10)
    left = [container.name for container in sandbox.client.containers.list(
        all=True, filters={"label": f"{LABEL}.grader={sandbox.grader}"})]
    return {"items": {item.submission.student: item for item in gradebook.submissions},
            "hashes": before, "alarms": alarms.seen, "left": left,
            "csv": (folder / "grades.csv").read_text()}


def test_every_submission_gets_a_score_and_no_attack_got_anywhere(graded) -> None:
    items = graded["items"]
    expected = {"honest", "hunter", "daemon", "memory", "ports", "tamper", "inspector"}
    assert set(items) == expected | ({"forkbomb", "disk", "writer", "snooper", "flooder"}
                                     if ALL else set())
    for name, item in items.items():
        assert item.sandbox == "docker"
        assert "LEAK" not in item.run.reason, (name, item.run.reason)
        assert item.points == item.max_points == 1, (name, item.run.reason,
                                                      [r.line() for r in item.results])
    assert all(line.endswith(",docker") for line in graded["csv"].splitlines()[1:])


def test_the_memory_hog_is_stopped_by_the_limit(graded) -> None:
    # RLIMIT_DATA makes the allocation fail (MemoryError, the notebook goes on) before the
    # container's memory limit would have the kernel killed.
    run = graded["items"]["memory"].run
    assert run.outcome == "completed", run.reason


def test_no_container_and_no_process_is_left(graded) -> None:
    items = graded["items"]
    assert graded["left"] == []
    # The daemon left its session: counted before the kernel stopped, gone with the container.
    assert items["daemon"].leftovers >= 1
    assert "still running after the run" in items["daemon"].run.reason or \
        items["daemon"].leftovers
    assert items["honest"].leftovers == 0
    assert not any(name.startswith("mqkit-sandbox-") and "daemon" in name
                   for name in leftover_containers())


def test_the_package_is_unchanged_and_the_canary_vhost_intact(graded, brokers,
                                                              canary_vhost) -> None:
    assert_package_untampered(graded["hashes"])
    assert canary_vhost in {vhost["name"] for vhost in Admin(brokers).vhosts()}


@pytest.mark.skipif(not ALL, reason="the flooder is in the full set only "
                                    "(MQKIT_TEST_SANDBOX_DOCKER_ALL=1)")
def test_a_flood_raises_no_memory_alarm(graded) -> None:
    assert graded["alarms"], "the memory alarm was never read"
    assert not any(graded["alarms"])


def test_an_honest_submission_scores_the_same_unsandboxed(graded, brokers, tmp_path) -> None:
    path = submissions.write(tmp_path, "01", {"honest": submissions.lab_notebook("01", True)})
    alone = grade("01", path, broker=brokers, timeout=30, sandbox="none")
    (item,) = alone.submissions
    assert [r.points for r in item.results] == \
        [r.points for r in graded["items"]["honest"].results]


def test_a_missing_image_says_what_to_do(sandbox) -> None:
    with pytest.raises(SandboxUnavailable) as caught:
        DockerSandbox(image="mqkit-sandbox/absent:0", base_image="mqkit-standin/absent:0")
    assert "mqkit-standin/absent:0" in str(caught.value)
    assert "docker/standin/build.sh" in str(caught.value)


def test_no_engine_says_what_to_do(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxUnavailable) as caught:
        choose_sandbox("docker")
    assert "No Docker Engine answers" in str(caught.value)
    assert "scripts/docker-engine.sh" in str(caught.value)
