"""Startup benchmark: `mqkit up` to the first delivered message vs the brokers' own boot.

For each backend (process; docker with host networking when an engine and images exist):

* raw   — the brokers started by hand (RabbitMQ and Mosquitto in parallel, minimal config)
          until both ports accept TCP connections;
* cold  — `mqkit up --json` in a fresh state directory, then one AMQP message published and
          consumed: wall time from launching the command to the delivered message;
* warm  — `mqkit up --json` again with the brokers running.

Goals (issue 2): cold / raw <= 1.15; warm <= 0.5 s. Run:
    .venv/bin/python benchmarks/startup.py [--runs 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika

from mqkit.brokers.ports import free_port
from mqkit.brokers.specs import ERL_LOOPBACK_ARGS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")


def wait_port(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"port {port} never answered")


def raw_process_boot(workdir: Path) -> float:
    """Start rabbitmq-server and mosquitto by hand; seconds until both ports answer."""
    amqp, dist, epmd, mqtt = (free_port() for _ in range(4))
    for sub in ("mnesia", "log", "home"):
        (workdir / sub).mkdir(parents=True)
    (workdir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{amqp}\n")
    (workdir / "mosquitto.conf").write_text(
        f"listener {mqtt} 127.0.0.1\nallow_anonymous true\n"
        + ("user root\n" if os.geteuid() == 0 else ""))
    env = dict(os.environ, HOME=str(workdir / "home"), RABBITMQ_NODENAME=f"raw-{amqp}@localhost",
               RABBITMQ_NODE_PORT=str(amqp), RABBITMQ_DIST_PORT=str(dist),
               RABBITMQ_MNESIA_BASE=str(workdir / "mnesia"), RABBITMQ_LOG_BASE=str(workdir / "log"),
               RABBITMQ_CONFIG_FILE=str(workdir / "rabbitmq.conf"),
               RABBITMQ_ENABLED_PLUGINS_FILE=str(workdir / "plugins"),
               ERL_EPMD_PORT=str(epmd), ERL_EPMD_ADDRESS="127.0.0.1",
               RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=ERL_LOOPBACK_ARGS, RUNNING_UNDER_SYSTEMD="1")
    (workdir / "plugins").write_text("[rabbitmq_management].\n")
    # Our own epmd (as mqkit does), so that nothing outlives the measurement.
    epmd_proc = subprocess.Popen([shutil.which("epmd") or "/usr/bin/epmd", "-address",
                                  "127.0.0.1", "-port", str(epmd)],
                                 stderr=subprocess.DEVNULL)
    wait_port(epmd)
    start = time.monotonic()
    rabbit = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    mosq = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                             str(workdir / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(mqtt)
    wait_port(amqp)
    elapsed = time.monotonic() - start
    for proc in (rabbit, mosq, epmd_proc):
        proc.terminate()
        proc.wait(60)
    return elapsed


def raw_docker_boot(workdir: Path, images: dict[str, str]) -> float:
    """`docker run` both images with host networking; seconds until both ports answer."""
    amqp, dist, epmd, mqtt = (free_port() for _ in range(4))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{amqp}\n")
    (workdir / "mosquitto.conf").write_text(f"listener {mqtt} 127.0.0.1\nallow_anonymous true\n")
    for path in workdir.iterdir():
        path.chmod(0o644)
    names = [f"raw-rabbit-{amqp}", f"raw-mosq-{mqtt}"]
    start = time.monotonic()
    subprocess.run(["docker", "run", "-d", "--rm", "--network", "host", "--name", names[0],
                    "-e", f"RABBITMQ_NODENAME=raw-{amqp}@localhost",
                    "-e", f"RABBITMQ_DIST_PORT={dist}", "-e", f"ERL_EPMD_PORT={epmd}",
                    "-e", "ERL_EPMD_ADDRESS=127.0.0.1",
                    "-v", f"{workdir / 'rabbitmq.conf'}:/etc/rabbitmq/rabbitmq.conf:ro",
                    images["rabbitmq"]], check=True, capture_output=True)
    subprocess.run(["docker", "run", "-d", "--rm", "--network", "host", "--name", names[1],
                    "-v", f"{workdir / 'mosquitto.conf'}:/mosquitto/config/mosquitto.conf:ro",
                    images["mosquitto"]], check=True, capture_output=True)
    wait_port(mqtt)
    wait_port(amqp)
    elapsed = time.monotonic() - start
    subprocess.run(["docker", "rm", "-f", "-v", *names], check=False, capture_output=True)
    return elapsed


def mqkit_up(env: dict[str, str]) -> tuple[float, dict[str, str]]:
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "mqkit", "up", "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    return time.monotonic() - start, json.loads(out)


def first_message(amqp_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"first")
    for _method, _props, body in channel.consume(queue, auto_ack=True, inactivity_timeout=10):
        assert body == b"first"
        break
    connection.close()


def measure(backend: str, runs: int, extra_env: dict[str, str],
            images: dict[str, str] | None) -> dict[str, float]:
    raws, colds, warms = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            raws.append(raw_docker_boot(Path(tmp), images) if images
                        else raw_process_boot(Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
            env |= {"MQKIT_STATE_DIR": tmp, "MQKIT_BACKEND": backend, **extra_env}
            start = time.monotonic()
            _, endpoints = mqkit_up(env)
            first_message(endpoints["amqp_url"])
            colds.append(time.monotonic() - start)
            warms.append(mqkit_up(env)[0])
            subprocess.run([sys.executable, "-m", "mqkit", "down"], env=env, check=True,
                           capture_output=True)
    raw, cold, warm = (statistics.median(v) for v in (raws, colds, warms))
    return {"raw_s": raw, "cold_s": cold, "warm_s": warm, "ratio": cold / raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    rows = {"process": measure("process", args.runs, {}, None)}
    images = {"rabbitmq": os.environ.get("MQKIT_TEST_RABBITMQ_IMAGE", ""),
              "mosquitto": os.environ.get("MQKIT_TEST_MOSQUITTO_IMAGE", "")}
    if all(images.values()) and shutil.which("docker"):
        rows["docker (host network)"] = measure(
            "docker", args.runs, {"MQKIT_DOCKER_NETWORK": "host",
                                  "MQKIT_RABBITMQ_IMAGE": images["rabbitmq"],
                                  "MQKIT_MOSQUITTO_IMAGE": images["mosquitto"]}, images)
    lines = ["| backend | raw boot (s) | mqkit cold to first message (s) | ratio (goal <= 1.15) "
             "| warm `mqkit up` (s, goal <= 0.5) |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['raw_s']:.2f} | {row['cold_s']:.2f} | {row['ratio']:.2f} "
                     f"| {row['warm_s']:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, {platform.platform()}")
        with RESULTS.open("a") as out:
            out.write(f"\n## startup.py — {time.strftime('%Y-%m-%d')} — median of {args.runs}\n\n"
                      f"Machine: {machine}. Docker images: {images['rabbitmq'] or '-'}, "
                      f"{images['mosquitto'] or '-'}.\n\n{table}\n")


if __name__ == "__main__":
    main()
