"""How long lab 00's first cell takes when the student opens it N seconds after `mqkit lab`.

`mqkit lab` boots the brokers in the background while JupyterLab starts (prestart). A student
opens lab 00 a few seconds later; its first cell (`mqkit.start_brokers()`, here followed by
one message sent round through RabbitMQ) then waits only for what is left of the boot. For
delays of 2, 5 and 10 s this measures that first cell, in a fresh Python process as a kernel
would be, against the serial path (no prestart: the first cell boots the brokers itself).
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

LABS = Path(__file__).resolve().parents[1] / "labs"

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


def with_prestart(delay: float) -> float:
    with tempfile.TemporaryDirectory(prefix="mqkit-first-cell-") as state_dir:
        env = _env(state_dir)
        command = [sys.executable, "-m", "mqkit", "lab", "--dir", str(LABS), "--",
                   "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={_free_port()}", "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        lab = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(delay)  # the student finds lab 00 and runs its first cell
            return _first_cell(env)
        finally:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(60)
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
    for delay in (2.0, 5.0, 10.0):
        seconds = median([with_prestart(delay) for _ in range(args.rounds)])
        lines.append(f"| `mqkit lab`, lab 00 opened after {delay:.0f} s | {seconds:.2f} |")
    lines += ["", "Goal: at 10 s, the first cell returns in at most 1 s."]
    report("First cell after mqkit lab (prestart)", lines, args.record)


if __name__ == "__main__":
    main()
