"""The user sandbox's sweep kills a slot's processes, and never a container's of the same uid.

A container's processes run with uids from its image. Seen on this machine: Debian sid's
``mosquitto`` user (the 4.3/2.1 stand-in) is uid 995, the uid ``useradd --system`` gave the
grader slot ``mqkit-grader-1``, and the sweep that ends a graded submission killed a Mosquitto
container in the middle of other tests. The official RabbitMQ image's ``rabbitmq`` is uid 999.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from mqkit.grading.sandbox import _ensure_user, _sweep, processes_of
from tests.helpers import docker_test_settings, require

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def test_the_sweep_spares_a_container_process_of_the_slots_uid() -> None:
    require(os.geteuid() == 0, "the user sandbox needs root")
    image = docker_test_settings()["mosquitto_image"]
    require(bool(image), "MQKIT_TEST_MOSQUITTO_IMAGE is not set (scripts/broker-images.sh)")
    uid, gid = _ensure_user("mqkit-grader-0")
    name = f"mqkit-test-sweep-{uuid.uuid4().hex[:8]}"
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--network", "none",
         "--user", f"{uid}:{gid}", "--entrypoint", "sleep", image, "60"],
        capture_output=True, text=True, timeout=60, check=False)
    require(started.returncode == 0, f"docker run: {started.stderr.strip()}")
    # A process of the same uid in the grader's own cgroups: what a submission leaves.
    ours = subprocess.Popen(["sleep", "60"], user=uid, group=gid)
    try:
        container_pid = int(subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", name], capture_output=True,
            text=True, timeout=30, check=True).stdout)
        assert container_pid > 0
        assert ours.pid in processes_of(uid)
        assert container_pid not in processes_of(uid)

        assert _sweep(uid) >= 1
        assert ours.wait(10) == -9  # SIGKILL
        time.sleep(0.2)
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", name],
                               capture_output=True, text=True, timeout=30, check=True)
        assert state.stdout.strip() == "true", "the sweep killed the container's process"
    finally:
        if ours.poll() is None:
            ours.kill()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60,
                       check=False)
