"""Startup benchmark: `mqkit up` to the first delivered message vs the brokers' own boot.

For each backend (process; docker with host networking when an engine and images exist):

* raw   — process backend: epmd, rabbitmq-server and mosquitto started by hand from this
          script, with the configuration and environment mqkit gives them (the same
          templates, a user and password, the management plugin, loopback Erlang ports),
          until one AMQP message is published and consumed; docker: both images run by hand
          until both ports accept TCP connections;
* cold  — `mqkit up --json` in a fresh state directory, then one AMQP message published and
          consumed: wall time from launching the command to the delivered message;
* warm  — `mqkit up --json` again with the brokers running.

Rounds are paired (raw and cold take turns going first); the ratio is the median of the
per-round ratios. Goals: cold / raw <= 1.05 for the process backend (issue 17), 1.15 for
docker (issue 2); warm <= 0.5 s. Run:
    .venv/bin/python benchmarks/startup.py [--runs 5] [--record]
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
import threading
import time
from pathlib import Path
from typing import Any

import pika

from mqkit.brokers.ports import free_port, is_listening
from mqkit.brokers.specs import ERL_LOOPBACK_ARGS, mosquitto_password_line, new_password, render

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")


def wait_port(port: int, timeout: float = 120, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(interval)
    raise TimeoutError(f"port {port} never answered")


class PortWatch(threading.Thread):
    """Notes the moment a port first accepts TCP connections (tried every 2 ms)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.opened = port, float("nan")
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if is_listening(self.port, timeout=0.2):
                self.opened = time.monotonic()
                return
            time.sleep(0.002)


def raw_process_boot(workdir: Path) -> tuple[float, float]:
    """Start epmd, rabbitmq-server and mosquitto by hand.

    Returns:
        Seconds to the first delivered message, and the part of them that is not RabbitMQ's
        own boot (before its process starts, and after its AMQP port opens).
    """
    amqp, management, dist, epmd, mqtt = (free_port() for _ in range(5))
    password = new_password()
    start = time.monotonic()
    for sub in ("mnesia", "log", "home", "data"):
        (workdir / sub).mkdir(parents=True)
    # The configuration mqkit writes, from the same templates.
    (workdir / "rabbitmq.conf").write_text(render(
        "rabbitmq/rabbitmq.conf.template", bind="127.0.0.1", amqp_port=amqp,
        management_port=management, memory="512MiB",
        extra=f"default_user = raw\ndefault_pass = {password}\n"))
    (workdir / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (workdir / "passwd").write_text(mosquitto_password_line("raw", password))
    (workdir / "mosquitto.conf").write_text(render(
        "mosquitto/mosquitto.conf.template", bind="127.0.0.1", mqtt_port=mqtt,
        password_file=workdir / "passwd", data_dir=workdir / "data",
        log_dest=f"file {workdir / 'mosquitto.log'}",
        extra="user root\n" if os.geteuid() == 0 else ""))
    env = dict(os.environ, HOME=str(workdir / "home"), RABBITMQ_NODENAME=f"raw-{amqp}@localhost",
               RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
               RABBITMQ_NODE_PORT=str(amqp), RABBITMQ_DIST_PORT=str(dist),
               RABBITMQ_MNESIA_BASE=str(workdir / "mnesia"), RABBITMQ_LOG_BASE=str(workdir / "log"),
               RABBITMQ_CONFIG_FILE=str(workdir / "rabbitmq.conf"),
               RABBITMQ_ENABLED_PLUGINS_FILE=str(workdir / "enabled_plugins"),
               RABBITMQ_ADVANCED_CONFIG_FILE=str(workdir / "advanced.config"),
               RABBITMQ_CONF_ENV_FILE=str(workdir / "rabbitmq-env.conf"),
               ERL_EPMD_PORT=str(epmd), ERL_EPMD_ADDRESS="127.0.0.1",
               RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=ERL_LOOPBACK_ARGS, RUNNING_UNDER_SYSTEMD="1")
    # Our own epmd (as mqkit does), so that nothing outlives the measurement.
    epmd_proc = subprocess.Popen([shutil.which("epmd") or "/usr/bin/epmd", "-address",
                                  "127.0.0.1", "-port", str(epmd)],
                                 stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(epmd, interval=0.005)
    watch = PortWatch(amqp)
    spawned = time.monotonic()
    rabbit = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env, cwd=workdir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    mosq = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                             str(workdir / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(mqtt)
        wait_port(amqp)
        first_message(f"amqp://raw:{password}@127.0.0.1:{amqp}/%2F")
        end = time.monotonic()
        watch.join()
        return end - start, (spawned - start) + (end - watch.opened)
    finally:
        for proc in (rabbit, mosq, epmd_proc):
            proc.terminate()
            proc.wait(60)


def raw_docker_boot(workdir: Path, images: dict[str, str]) -> tuple[float, float]:
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
    return elapsed, float("nan")


def mqkit_up(env: dict[str, str]) -> tuple[float, dict[str, str], float]:
    """Run `mqkit up --json`: seconds, endpoints, and when it said it started RabbitMQ."""
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "mqkit", "up", "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spawned = [float("nan")]

    def read_progress() -> None:
        assert child.stderr is not None
        for line in child.stderr:  # mqkit logs each process it starts as it starts it
            if "started rabbitmq" in line:
                spawned[0] = time.monotonic()

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    out = child.stdout.read() if child.stdout else ""
    if child.wait() != 0:
        raise RuntimeError("mqkit up failed")
    elapsed = time.monotonic() - start
    reader.join()
    return elapsed, json.loads(out), spawned[0]


def first_message(amqp_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"first")
    for _method, _props, body in channel.consume(queue, auto_ack=True, inactivity_timeout=10):
        assert body == b"first"
        break
    connection.close()


def raw_round(images: dict[str, str] | None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return raw_docker_boot(Path(tmp), images) if images else raw_process_boot(Path(tmp))


def mqkit_round(backend: str, extra_env: dict[str, str]) -> tuple[float, float, float]:
    """Cold `mqkit up` to the first delivered message, the part of it that is not RabbitMQ's
    own boot (before mqkit starts its process, after its AMQP port opens), warm `mqkit up`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        amqp = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
        env |= {"MQKIT_STATE_DIR": tmp, "MQKIT_BACKEND": backend, "MQKIT_AMQP_PORT": str(amqp),
                **extra_env}
        try:
            watch = PortWatch(amqp)
            start = time.monotonic()
            _, endpoints, spawned = mqkit_up(env)
            first_message(endpoints["amqp_url"])
            end = time.monotonic()
            watch.join()
            return end - start, (spawned - start) + (end - watch.opened), mqkit_up(env)[0]
        finally:
            subprocess.run([sys.executable, "-m", "mqkit", "down"], env=env, check=True,
                           capture_output=True)


def measure(backend: str, runs: int, extra_env: dict[str, str],
            images: dict[str, str] | None) -> dict[str, Any]:
    raws, colds, warms, ratios, raw_owns, cold_owns = [], [], [], [], [], []
    for turn in range(runs):
        if turn % 2 == 0:
            raw, raw_own = raw_round(images)
            cold, cold_own, warm = mqkit_round(backend, extra_env)
        else:
            cold, cold_own, warm = mqkit_round(backend, extra_env)
            raw, raw_own = raw_round(images)
        raws.append(raw)
        colds.append(cold)
        warms.append(warm)
        ratios.append(cold / raw)
        raw_owns.append(raw_own)
        cold_owns.append(cold_own)
        print(f"{backend} round {turn + 1}: raw {raw:.2f} s (outside the boot {raw_own:.3f}), "
              f"mqkit cold {cold:.2f} s (outside the boot {cold_own:.3f}), warm {warm:.2f} s",
              file=sys.stderr)
    raw, cold, warm, ratio, raw_own, cold_own = (
        statistics.median(v) for v in (raws, colds, warms, ratios, raw_owns, cold_owns))
    return {"raw_s": raw, "cold_s": cold, "warm_s": warm, "ratio": ratio,
            "raw_own_s": raw_own, "cold_own_s": cold_own, "raws": raws, "colds": colds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
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
    lines = ["| backend | raw boot (s) | mqkit cold to first message (s) | ratio, median of "
             "pairs | goal | outside RabbitMQ's boot, raw / mqkit (s) "
             "| warm `mqkit up` (s, goal <= 0.5) |", "|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        goal = 1.05 if name == "process" else 1.15
        verdict = "ok" if row["ratio"] <= goal else "MISSED"
        lines.append(f"| {name} | {row['raw_s']:.2f} | {row['cold_s']:.2f} | {row['ratio']:.3f} "
                     f"| <= {goal} {verdict} | {row['raw_own_s']:.3f} / {row['cold_own_s']:.3f} "
                     f"| {row['warm_s']:.2f} |")
    lines.append("")
    for name, row in rows.items():
        pairs = ", ".join(f"{r:.2f}/{c:.2f}" for r, c in zip(row["raws"], row["colds"],
                                                             strict=True))
        lines.append(f"{name}, raw/cold per round (s): {pairs}.")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines.append(f"Load average (1, 5, 15 min) at the end: {load}.")
    table = "\n".join(lines)
    print(table)
    if args.record:
        machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, {platform.platform()}")
        with RESULTS.open("a") as out:
            out.write(f"\n## startup.py — {time.strftime('%Y-%m-%d')} — median of {args.runs}\n\n"
                      f"Machine: {machine}. Docker images: {images['rabbitmq'] or '-'}, "
                      f"{images['mosquitto'] or '-'}. Process raw boot: epmd, "
                      "rabbitmq-server and mosquitto started by hand with mqkit's templates "
                      "and environment, to a first delivered AMQP message. Outside RabbitMQ's "
                      "boot: the time before its process starts plus the time after its AMQP "
                      "port opens (seen from this script, tried every 2 ms), the part a "
                      "launcher can take out; the boot itself varies by seconds here.\n\n"
                      f"{table}\n")


if __name__ == "__main__":
    main()
