"""Live widgets for the labs (ipywidgets 8, no frontend build).

Each widget is a thin view over a plain Python object (its ``model``) that tests and
scripts drive without a browser.

Example:
    >>> from mqkit.widgets import Publisher, QueueInbox
    >>> QueueInbox("my_queue")                          # doctest: +SKIP
    >>> Publisher(routing_key="my_queue")               # doctest: +SKIP
"""

from mqkit.widgets.broker_panel import BrokerPanel, BrokerPanelModel
from mqkit.widgets.inbox import InboxModel, Message, QueueInbox
from mqkit.widgets.mqtt import (
    MQTTInbox,
    MQTTInboxModel,
    MQTTMessage,
    MQTTPublisher,
    MQTTPublisherModel,
    MQTTPublishResult,
    TopicFilterExplainer,
    TopicFilterModel,
)
from mqkit.widgets.publisher import Publisher, PublisherModel, PublishResult, parse_headers
from mqkit.widgets.routing_explainer import RoutingExplainer, RoutingExplainerModel
from mqkit.widgets.topology import TopologyModel, TopologyView, topology_svg

__all__ = [
    "BrokerPanel",
    "BrokerPanelModel",
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
