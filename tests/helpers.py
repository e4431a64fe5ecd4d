"""Small real-broker helpers shared by tests."""

from __future__ import annotations

import subprocess
import threading
import uuid

import paho.mqtt.client as mqtt

from mqkit.urls import BrokerAddress


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
