"""The docker sandbox's kernel launcher: what Jupyter starts in place of the kernel.

``python -I docker_kernel.py SPEC KERNEL-COMMAND...`` (run by path, importing nothing of
mqkit, so it starts in a tenth of a second) creates the container that
:class:`mqkit.grading.sandbox_docker.DockerSandbox` described in ``SPEC`` (JSON), with this
process's environment (the kernel's, as Jupyter made it) and ``KERNEL-COMMAND`` run behind
the relay; waits for it; forwards SIGINT and SIGTERM (an interrupt reaches the kernel through
the container's init); writes the kernel's last lines to stderr; removes the container; and
exits with the kernel's status.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
from typing import Any


def _script(spec: dict[str, Any]) -> str:
    """The container's shell: copy the submission in, start the relay, become the kernel."""
    q = shlex.quote
    folder, home = spec["folder"], spec["home"]
    ports = " ".join(str(port) for port in spec["ports"])
    return "; ".join([
        "set -e",
        f"if [ -f {q(folder + '/submission.ipynb')} ]; then "
        f"cp {q(folder + '/submission.ipynb')} {q(home)}/; fi",
        f"{q(spec['python'])} -I {q(spec['relay'])} {q(folder)} {ports}",
        f"echo $$ > {q(spec['kernel_pid'])}",
        'exec "$@"'])


def run_kernel(spec: dict[str, Any], command: list[str]) -> int:
    """Run ``command`` (the kernel) in a container made to ``spec``; its exit status."""
    from docker.types import LogConfig, Mount, Ulimit

    import docker

    client = docker.from_env(timeout=60)
    # Jupyter names its own pid for the kernel to watch: in the container's PID namespace the
    # kernel's parent is the init, so ipykernel would take it for gone and stop at once.
    environment = {key: value for key, value in os.environ.items() if key != "JPY_PARENT_PID"}
    container = client.containers.create(
        spec["image"], command=["sh", "-c", _script(spec), "mqkit-sandbox", *command],
        name=spec["name"], labels=spec["labels"], user=spec["user"],
        environment=environment, working_dir=spec["home"], hostname="sandbox",
        network_mode="none", read_only=True, init=True,
        cap_drop=["ALL"], security_opt=["no-new-privileges"],
        mounts=[Mount(m["target"], m["source"], type="bind", read_only=m["read_only"])
                for m in spec["mounts"]],
        tmpfs=spec["tmpfs"], shm_size=spec["shm_size"],
        mem_limit=spec["mem_limit"], memswap_limit=spec["mem_limit"],
        nano_cpus=spec["nano_cpus"], pids_limit=spec["pids_limit"],
        ulimits=[Ulimit(name=key, soft=value, hard=value)
                 for key, value in spec["ulimits"].items()],
        log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}))

    def forward(signum: int, _frame: Any) -> None:
        # A fresh client: the main thread's may be inside a request.
        with contextlib.suppress(Exception):
            docker.from_env(timeout=10).containers.get(spec["name"]).kill(
                signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    container.start()
    status = 1
    try:
        status = int(container.wait().get("StatusCode", 1))
        # The kernel's last words (a missing library, a kill by the memory limit) for the
        # runner's report.
        tail = container.logs(stdout=True, stderr=True, tail=20)
        sys.stderr.buffer.write(tail)
        container.reload()
        if container.attrs["State"].get("OOMKilled"):
            sys.stderr.write("the container's memory limit was reached (OOM killed)\n")
        sys.stderr.flush()
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    return status


if __name__ == "__main__":  # python -I docker_kernel.py SPEC KERNEL-COMMAND...
    sys.exit(run_kernel(json.loads(sys.argv[1]), sys.argv[2:]))
