"""Live widgets for the labs (ipywidgets 8, no frontend build).

Each widget is a thin view over a plain Python object (its ``model``) that tests and
scripts drive without a browser; one module per widget, for AMQP (``publisher``, ``inbox``,
``routing_explainer``) and for MQTT (``mqtt_publisher``, ``mqtt_inbox``,
``topic_filter_explainer``). Both inboxes keep their messages in a ``buffer.MessageBuffer``
and share one ``inbox_view.InboxView``, which reads a model only through ``InboxSource``.

Example:
    >>> from mqkit.widgets import Publisher, QueueInbox
    >>> QueueInbox("my_queue")                          # doctest: +SKIP
    >>> Publisher(routing_key="my_queue")               # doctest: +SKIP
"""

from mqkit.widgets.broker_panel import BrokerPanel, BrokerPanelModel
from mqkit.widgets.class_progress import ClassProgress
from mqkit.widgets.inbox import InboxModel, Message, QueueInbox
from mqkit.widgets.mqtt_inbox import MQTTInbox, MQTTInboxModel, MQTTMessage
from mqkit.widgets.mqtt_publisher import MQTTPublisher, MQTTPublisherModel, MQTTPublishResult
from mqkit.widgets.publisher import Publisher, PublisherModel, PublishResult, parse_headers
from mqkit.widgets.routing_explainer import RoutingExplainer, RoutingExplainerModel
from mqkit.widgets.topic_filter_explainer import TopicFilterExplainer, TopicFilterModel
from mqkit.widgets.topology import TopologyModel, TopologyView, topology_svg

__all__ = [
    "BrokerPanel",
    "BrokerPanelModel",
    "ClassProgress",
    "InboxModel",
    "MQTTInbox",
    "MQTTInboxModel",
    "MQTTMessage",
    "MQTTPublishResult",
    "MQTTPublisher",
    "MQTTPublisherModel",
    "Message",
    "PublishResult",
    "Publisher",
    "PublisherModel",
    "QueueInbox",
    "RoutingExplainer",
    "RoutingExplainerModel",
    "TopicFilterExplainer",
    "TopicFilterModel",
    "TopologyModel",
    "TopologyView",
    "parse_headers",
    "topology_svg",
]
