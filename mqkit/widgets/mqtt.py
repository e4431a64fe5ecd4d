"""Old home of the MQTT widgets, kept so that ``from mqkit.widgets.mqtt import ...`` works.

Each concept now has its own module: :mod:`mqkit.widgets.mqtt_publisher`,
:mod:`mqkit.widgets.mqtt_inbox` and :mod:`mqkit.widgets.topic_filter_explainer`. Import from
:mod:`mqkit.widgets` (or those modules) instead; this module goes once nothing imports it.
"""

from mqkit.widgets.mqtt_inbox import MQTTInbox, MQTTInboxModel, MQTTMessage, format_mqtt_message
from mqkit.widgets.mqtt_publisher import MQTTPublisher, MQTTPublisherModel, MQTTPublishResult
from mqkit.widgets.topic_filter_explainer import (
    FilterVerdict,
    TopicFilterExplainer,
    TopicFilterModel,
)

__all__ = [
    "FilterVerdict",
    "MQTTInbox",
    "MQTTInboxModel",
    "MQTTMessage",
    "MQTTPublishResult",
    "MQTTPublisher",
    "MQTTPublisherModel",
    "TopicFilterExplainer",
    "TopicFilterModel",
    "format_mqtt_message",
]
