"""Small helpers shared by tests: CI-aware skipping, making backends, real-broker round trips."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from mqkit.urls import BrokerAddress

#: In CI (``.ci/run`` sets CI=true) a missing service is a failure, not a skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` on a laptop when ``condition`` is false; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {reason}", pytrace=False)
    pytest.skip(reason)


def docker_test_settings() -> dict[str, str | None]:
    """The images the docker tests use (``scripts/broker-images.sh`` sets them), host network."""
    return {"rabbitmq_image": os.environ.get("MQKIT_TEST_RABBITMQ_IMAGE"),
            "mosquitto_image": os.environ.get("MQKIT_TEST_MOSQUITTO_IMAGE"),
            "docker_network": "host"}


def make_backend(name: str, state_dir: Path, **settings):
    """A ``process`` or ``docker`` backend in ``state_dir``; ``require`` what it needs.

    The docker backend uses host networking and the test images unless ``settings`` says
    otherwise, and requires both images on this machine.
    """
    from mqkit.brokers.launcher import BACKENDS
    from mqkit.config import Settings

    if name == "docker":
        settings = docker_test_settings() | settings
    backend = BACKENDS[name](Settings.from_env(env={}, backend=name, state_dir=state_dir,
                                               **settings))
    if name == "docker":
        try:
            engine = backend.client()
        except Exception as exc:
            require(False, f"Docker engine: {exc}")
        tags = {tag for image in engine.images.list() for tag in image.tags}
        for image in (backend.settings.rabbitmq_image, backend.settings.mosquitto_image):
            require(any(image in tag for tag in tags),
                    f"image {image} is not on this machine (scripts/broker-images.sh builds it)")
    availability = backend.availability()
    require(availability.is_available, f"{name} backend: {availability.reason}")
    return backend


def _client(address: BrokerAddress, role: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"test-{role}-{uuid.uuid4().hex[:12]}")
    client.username_pw_set(address.username, address.password)
    return client


def mqtt_round_trip(address: BrokerAddress, topic: str, payload: bytes = b"hello mqtt",
                    timeout: float = 10.0) -> bytes | None:
    """Subscribe, wait for the SUBACK, publish once at QoS 1; return what arrived (or None)."""
    subscribed, arrived = threading.Event(), threading.Event()
    received: list[bytes] = []

    def on_message(_client, _userdata, message):
        received.append(message.payload)
        arrived.set()

    sub = _client(address, "sub")
    sub.on_subscribe = lambda *_args: subscribed.set()
    sub.on_message = on_message
    sub.connect(address.host, address.port)
    sub.loop_start()
    try:
        sub.subscribe(topic, qos=1)
        if not subscribed.wait(timeout):
            return None
        pub = _client(address, "pub")
        pub.connect(address.host, address.port)
        pub.loop_start()
        try:
            pub.publish(topic, payload, qos=1).wait_for_publish(timeout)
            arrived.wait(timeout)
        finally:
            pub.disconnect()
            pub.loop_stop()
    finally:
        sub.disconnect()
        sub.loop_stop()
    return received[0] if received else None


def listening_sockets(pids: set[int]) -> list[str]:
    """Local addresses that any of ``pids`` listen on (from `ss`)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines()
            if any(f"pid={pid}," in line for pid in pids)]


def run_notebook_with_card(path: Path, card: dict[str, str], state_dir: Path,
                           timeout: int = 180) -> list[str]:
    """Run a lab notebook in a kernel whose environment is a student's card; its outputs.

    Fails the test on any error output. ``state_dir`` is the kernel's MQKIT_STATE_DIR, so
    nothing of mqkit's own brokers is found: the card is all it has.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    env |= card | {"MQKIT_STATE_DIR": str(state_dir)}
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return [o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs]


#: A self-check's verdict line in a notebook's output.
VERDICT = re.compile(r"[✔✘⚠] (passed|not yet|could)")
