"""The consumer: subscribe to a topic filter and print every message as one JSON line.

Besides the MQTT_* variables of common.py it reads:

* ``EXPECTED_COUNT``: stop after this many messages (default 0 = until stopped);
* ``READY_FILE``: a file to create once subscribed (compose.yaml's healthcheck looks for it).

Each line on stdout looks like
``{"received": 1, "topic": "lecture/demo", "qos": 1, "retain": false, "dup": false,
"payload": {"seq": 1, "text": "..."}}``; a payload that is not JSON is printed as a string.
With ``MQTT_CLEAN_SESSION=false`` and a fixed ``MQTT_CLIENT_ID`` the broker keeps the
subscription, and the QoS 1/2 messages published meanwhile, while the consumer is away.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import threading

from common import Connection, Settings, integer, run, sleep

log = logging.getLogger("consumer")


def consume(stop: threading.Event, env: dict[str, str] | None = None) -> int:
    """Print messages until EXPECTED_COUNT arrived or ``stop`` is set; return an exit code."""
    env = dict(os.environ if env is None else env)
    settings = Settings.from_env(env)
    expected = integer("EXPECTED_COUNT", env.get("EXPECTED_COUNT", "0"))
    ready_file = env.get("READY_FILE")
    received = 0

    def on_ready(client) -> None:
        # Subscribe on every (re)connect: a clean session forgets subscriptions.
        client.subscribe(settings.topic, settings.qos)

    def on_subscribe(client, userdata, mid, reason_codes, properties) -> None:
        if reason_codes[0].is_failure:
            connection.refused = (f"the broker refused the subscription to {settings.topic!r}:"
                                  f" {reason_codes[0]}")
            stop.set()
            return
        log.info("subscribed to %s (QoS %s)", settings.topic, reason_codes[0].value)
        if ready_file:
            pathlib.Path(ready_file).touch()

    def on_message(client, userdata, message) -> None:
        nonlocal received
        if expected and received >= expected:
            return  # not acknowledged: a persistent session gets it again next time
        received += 1
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = message.payload.decode(errors="replace")
        print(json.dumps({"received": received, "topic": message.topic, "qos": message.qos,
                          "retain": message.retain, "dup": bool(message.dup),
                          "payload": payload}), flush=True)
        # Acknowledge (PUBACK / PUBREC) only once the message is handled.
        client.ack(message.mid, message.qos)
        if expected and received >= expected:
            stop.set()

    connection = Connection(settings, "consumer", stop, on_ready=on_ready, manual_ack=True)
    connection.client.on_subscribe = on_subscribe
    connection.client.on_message = on_message
    connection.start()
    try:
        while not stop.is_set():
            sleep(stop, 1.0)
    finally:
        connection.close()

    if connection.refused:
        log.error("%s", connection.refused)
        return 1
    log.info("received %d messages", received)
    return 0


if __name__ == "__main__":
    run(consume)
