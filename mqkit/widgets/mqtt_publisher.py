"""MQTTPublisher: a form that publishes one MQTT message per click (topic, payload, QoS, retain).

The widget is a thin view over :class:`MQTTPublisherModel`, a paho client whose network loop
runs in paho's background thread. The result of each click (for QoS 1 and 2: acknowledged by
the broker, or not) is shown below the button.

Example:
    >>> MQTTPublisher(endpoints, topic="sensors/kitchen/temperature")   # doctest: +SKIP
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as widgets

from mqkit import clients
from mqkit.exceptions import ConnectionLost
from mqkit.routing import validate_topic_name
from mqkit.widgets.mqtt_qos import QOS_MEANING, check_qos
from mqkit.widgets.publish_form import LABEL_STYLE, PublishForm, wide_layout

if TYPE_CHECKING:
    from mqkit.endpoints import Endpoints


@dataclass(frozen=True)
class MQTTPublishResult:
    """What happened to one published MQTT message.

    Attributes:
        ok: False when the message could not be sent or was not acknowledged in time.
        topic: the topic it was published to.
        qos: its QoS (0, 1 or 2).
        retain: whether the broker was asked to keep it as the topic's retained message.
        mid: paho's message id.
        is_acknowledged: True when the broker acknowledged it (PUBACK for QoS 1, PUBCOMP
            for QoS 2); QoS 0 is never acknowledged.
        detail: why it failed, or an empty string.
    """

    ok: bool
    topic: str
    qos: int
    retain: bool = False
    mid: int = 0
    is_acknowledged: bool = False
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.topic!r} (QoS {self.qos}{', retained' if self.retain else ''})"
        if not self.ok:
            return f"NOT PUBLISHED to {where}: {self.detail}"
        how = {0: "sent, QoS 0 has no acknowledgement", 1: "acknowledged by the broker: PUBACK",
               2: "acknowledged by the broker: PUBREC, PUBREL, PUBCOMP"}[self.qos]
        return f"published to {where} ({how})"


class MQTTPublisherModel:
    """Publishes MQTT messages over a paho client whose loop runs in the background.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``mqtt://`` URL, or ``None``.
        client_id: the client id (a random ``mqkit-pub-…`` one by default).
        key: registry key; a new publisher with the same key (a re-run cell) disconnects
            this one. ``None`` registers nothing.
        timeout: seconds to wait for the CONNACK, and for the acknowledgement of QoS 1/2.

    Attributes:
        published: how many messages were published successfully.
        client: the connected paho client.
    """

    def __init__(self, endpoints_or_url: Endpoints | str | None = None, *,
                 client_id: str | None = None, key: str | None = None,
                 timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.key = key
        self.published = 0
        self._is_replaced = False
        self.client_id = client_id or f"mqkit-pub-{secrets.token_hex(4)}"
        self.client = clients.mqtt_client(endpoints_or_url, client_id=self.client_id)
        # The loop thread is registered under a key of this instance only, so a re-run
        # cell stops exactly the old publisher's loop (through register(key) below).
        loop_key = f"mqtt-loop:{self.client_id}:{secrets.token_hex(3)}"
        clients.mqtt_connect(client=self.client, timeout=timeout, key=loop_key)
        self._loop = clients.workers().get(loop_key)
        if key is not None:
            clients.register(key, self)

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                retain: bool = False) -> MQTTPublishResult:
        """Publish one message; for QoS 1 and 2, wait for the broker's acknowledgement.

        Raises:
            ConfigError: an invalid topic (empty, with a wildcard) or QoS.
            ConnectionLost: this publisher was closed or replaced by a newer one.
        """
        if self._is_replaced:
            raise ConnectionLost(
                f"This MQTT publisher was closed or replaced (key {self.key!r}).",
                hint="Use the newer publisher, or create a new one.")
        validate_topic_name(topic)
        check_qos(qos)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != 0:
            import paho.mqtt.client as mqtt

            return MQTTPublishResult(False, topic, qos, retain, info.mid,
                                     detail=f"paho said {mqtt.error_string(info.rc)}")
        if qos == 0:
            self.published += 1
            return MQTTPublishResult(True, topic, qos, retain, info.mid)
        try:
            info.wait_for_publish(self.timeout)
        except RuntimeError as exc:  # paho: the message was dropped (connection lost)
            return MQTTPublishResult(False, topic, qos, retain, info.mid, detail=str(exc))
        if not info.is_published():
            return MQTTPublishResult(False, topic, qos, retain, info.mid, detail=(
                f"no acknowledgement within {self.timeout} s (paho re-sends it after a "
                "reconnect)"))
        self.published += 1
        return MQTTPublishResult(True, topic, qos, retain, info.mid, is_acknowledged=True)

    def close(self) -> None:
        """Disconnect and stop the client's loop thread (idempotent)."""
        self._is_replaced = True
        if self._loop is not None:
            self._loop.stop()
        else:
            self.client.disconnect()
            self.client.loop_stop()
        if self.key is not None:
            clients.unregister(self.key, self)

    stop = close


class MQTTPublisher(PublishForm):
    """A form that publishes one MQTT message per click: topic, payload, QoS and retain.

    Errors (an invalid topic, a lost connection) are shown below the button, not raised.

    Args:
        endpoints_or_url: :class:`~mqkit.Endpoints`, an ``mqtt://`` URL, or ``None``.
        topic: initial topic.
        payload: initial payload.
        qos: initial QoS.
        retain: initial state of the retain box.
        key: registry key: re-running the cell disconnects the previous publisher.

    Example:
        >>> MQTTPublisher(endpoints, topic="sensors/kitchen/temperature", payload="21.5")
        ... # doctest: +SKIP
    """

    def __init__(self, endpoints_or_url: Endpoints | str | None = None, *, topic: str = "",
                 payload: str = "", qos: int = 0, retain: bool = False,
                 key: str | None = "mqtt-publisher") -> None:
        self.model = MQTTPublisherModel(endpoints_or_url, key=key)
        self.topic = widgets.Text(topic, description="topic", placeholder="e.g. home/kitchen",
                                  style=LABEL_STYLE, layout=wide_layout())
        self.payload = widgets.Textarea(payload, description="payload", rows=2,
                                        style=LABEL_STYLE, layout=wide_layout())
        self.qos = widgets.Dropdown(options=[(f"{q} — {m}", q) for q, m in QOS_MEANING.items()],
                                    value=check_qos(qos), description="QoS", style=LABEL_STYLE)
        self.retain = widgets.Checkbox(retain, description="retain", indent=False)
        self.button = widgets.Button(description="Publish", button_style="primary",
                                     icon="paper-plane")
        self.output = widgets.Output()
        self.button.on_click(lambda _button: self.publish())
        super().__init__([self.topic, self.payload, widgets.HBox([self.qos, self.retain]),
                          self.button, self.output])

    def publish(self) -> MQTTPublishResult | None:
        """Publish what the form holds; show the result or the error below the button."""
        return self._submit(lambda: self.model.publish(
            self.topic.value, self.payload.value, qos=self.qos.value, retain=self.retain.value))

