"""mqkit.widgets: a sorted, documented export list, one module per widget concept."""

from __future__ import annotations

import mqkit.widgets


def test_all_is_sorted_and_documented() -> None:
    assert mqkit.widgets.__all__ == sorted(mqkit.widgets.__all__)
    for name in mqkit.widgets.__all__:
        assert getattr(mqkit.widgets, name).__doc__, name


def test_one_module_per_widget_concept() -> None:
    # The MQTT widgets live one concept per module, like the AMQP side; no catch-all module.
    import importlib.util

    assert importlib.util.find_spec("mqkit.widgets.mqtt") is None
    for name in ("mqtt_publisher", "mqtt_inbox", "topic_filter_explainer", "publisher",
                 "inbox", "inbox_view", "buffer", "publish_form"):
        assert importlib.util.find_spec(f"mqkit.widgets.{name}") is not None, name
