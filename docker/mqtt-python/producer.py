"""The producer: publish numbered messages to one topic, then stop.

Besides the MQTT_* variables of common.py it reads:

* ``MESSAGE_COUNT``: how many messages to send (default 10; 0 = until stopped);
* ``MESSAGE_INTERVAL``: seconds between two messages (default 1);
* ``MESSAGE_TEXT``: the text inside each message (default "hello from the producer").

Each message is a JSON object ``{"seq": 1, "text": "..."}``; each one sent is also printed as
one JSON line on stdout. Run it with ``python -u producer.py``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from common import ConfigError, Connection, Settings, integer, run, seconds, sleep

log = logging.getLogger("producer")

#: How long to wait, at the end, for the broker to confirm what we sent (QoS 1 and 2).
CONFIRM_TIMEOUT = 5.0


def produce(stop: threading.Event, env: dict[str, str] | None = None) -> int:
    """Publish until MESSAGE_COUNT messages are sent or ``stop`` is set; return an exit code."""
    env = dict(os.environ if env is None else env)
    settings = Settings.from_env(env)
    if any(char in settings.topic for char in "+#"):
        raise ConfigError(f"MQTT_TOPIC {settings.topic!r}: a producer cannot publish to a "
                          "wildcard filter")
    count = integer("MESSAGE_COUNT", env.get("MESSAGE_COUNT", "10"))
    interval = seconds("MESSAGE_INTERVAL", env.get("MESSAGE_INTERVAL", "1"))
    text = env.get("MESSAGE_TEXT", "hello from the producer")

    connection = Connection(settings, "producer", stop)
    connection.start()
    unconfirmed = []  # paho keeps these and re-sends them after a reconnect
    seq = 0
    try:
        while not stop.is_set() and (count == 0 or seq < count):
            if not connection.connected.is_set():
                sleep(stop, 0.1)  # the broker is away: wait rather than pile messages up
                continue
            seq += 1
            payload = {"seq": seq, "text": text}
            info = connection.client.publish(settings.topic, json.dumps(payload), settings.qos)
            if settings.qos > 0:
                unconfirmed = [i for i in unconfirmed if not i.is_published()] + [info]
            print(json.dumps({"sent": seq, "topic": settings.topic, "qos": settings.qos,
                              "payload": payload}), flush=True)
            sleep(stop, interval)
        # A clean stop (signal or done) waits for the broker's PUBACK/PUBCOMP of what was sent.
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while (connection.refused is None and time.monotonic() < deadline
               and not all(info.is_published() for info in unconfirmed)):
            time.sleep(0.05)
    finally:
        connection.close()

    if connection.refused:
        log.error("%s", connection.refused)
        return 1
    missing = sum(not info.is_published() for info in unconfirmed)
    if missing:
        log.error("%d of %d messages were not confirmed by the broker", missing, seq)
        return 1
    log.info("sent %d messages%s", seq, " (stopped)" if count and seq < count else "")
    return 0


if __name__ == "__main__":
    run(produce)
