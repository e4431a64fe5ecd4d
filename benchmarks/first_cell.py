"""How long lab 00's first cell takes when the student opens it N seconds after the server starts.

`mqkit lab` and `binder/start` boot the brokers in the background while JupyterLab starts
(prestart). A student opens lab 00 a few seconds later; its first cell
(`mqkit.start_brokers()`, here followed by one message sent round through RabbitMQ) then
waits only for what is left of the boot. For delays of 2, 5 and 10 s this measures that first
cell, in a fresh Python process with the server's environment as a kernel would be, on both
paths, against the serial path (no prestart: the first cell boots the brokers itself).
Goal: at 10 s, the first cell returns in at most 1 s.

    python -m benchmarks.first_cell [--rounds 1] [--record]
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._support import arguments, median, report

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"

#: What binder/start exports for the notebook server, and so for every kernel it starts.
BINDER_ENV = {"MQKIT_BACKEND": "process", "MQKIT_RABBITMQ_MEMORY": "384MiB",
              "MQKIT_STARTUP_TIMEOUT": "120"}

#: Lab 00's first cell, and one message round trip (the moment the student sees it work).
FIRST_CELL = """
import time, pika, mqkit
started = time.perf_counter()
endpoints = mqkit.start_brokers()
connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
channel = connection.channel()
queue = channel.queue_declare(queue='', exclusive=True).method.queue
channel.basic_publish('', queue, b'hello')
while channel.basic_get(queue, auto_ack=True)[0] is None:
    pass
connection.close()
print(time.perf_counter() - started)
"""


def _env(state_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env |= {"MQKIT_STATE_DIR": state_dir, "MQKIT_BACKEND": "process"}
    return env


def _first_cell(env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", FIRST_CELL], env=env, capture_output=True,
                          text=True, timeout=180, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_args(port: int) -> list[str]:
    args = ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0"]
    return [*args, "--allow-root"] if os.geteuid() == 0 else args


def _server(path: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command that starts the notebook server on ``path``, and the kernels' environment."""
    port = _free_port()
    if path == "mqkit lab":
        return ([sys.executable, "-m", "mqkit", "lab", "--dir", str(LABS), "--",
                 *_server_args(port)], env)
    # binder/start prestarts only when it starts `jupyter ...` (as repo2docker calls it), with
    # the `mqkit` on PATH, as Binder's environment has both.
    bin_dir = Path(sys.executable).parent
    env = env | BINDER_ENV | {"PATH": f"{bin_dir}:{env['PATH']}"}
    return (["bash", str(ROOT / "binder" / "start"), str(bin_dir / "jupyter"), "lab",
             f"--ServerApp.root_dir={LABS}", *_server_args(port)], env)


def with_prestart(path: str, delay: float) -> float:
    with tempfile.TemporaryDirectory(prefix="mqkit-first-cell-") as state_dir:
        command, env = _server(path, _env(state_dir))
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(delay)  # the student finds lab 00 and runs its first cell
            return _first_cell(env)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
            subprocess.run([sys.executable, "-m", "mqkit", "down"], env=env,
                           capture_output=True, timeout=120, check=False)


def serial() -> float:
    with tempfile.TemporaryDirectory(prefix="mqkit-first-cell-") as state_dir:
        env = _env(state_dir)
        try:
            return _first_cell(env)
        finally:
            subprocess.run([sys.executable, "-m", "mqkit", "down"], env=env,
                           capture_output=True, timeout=120, check=False)


def main() -> None:
    args = arguments(__doc__, messages=1, rounds=1)
    lines = ["| path | first cell (s), median of rounds |", "|---|---|"]
    lines.append(f"| serial (the first cell boots the brokers) | "
                 f"{median([serial() for _ in range(args.rounds)]):.2f} |")
    for path in ("mqkit lab", "binder/start"):
        for delay in (2.0, 5.0, 10.0):
            seconds = median([with_prestart(path, delay) for _ in range(args.rounds)])
            lines.append(f"| `{path}`, lab 00 opened after {delay:.0f} s | {seconds:.2f} |")
    lines += ["", "Goal: at 10 s, the first cell returns in at most 1 s."]
    report("First cell after mqkit lab and binder/start (prestart)", lines, args.record)


if __name__ == "__main__":
    main()
