"""mqkit.widgets: a sorted, documented export list, and the old ``mqtt`` module still works."""

from __future__ import annotations

import mqkit.widgets
from mqkit.widgets import mqtt


def test_all_is_sorted_and_documented() -> None:
    assert mqkit.widgets.__all__ == sorted(mqkit.widgets.__all__)
    for name in mqkit.widgets.__all__:
        assert getattr(mqkit.widgets, name).__doc__, name


def test_old_mqtt_module_reexports_the_same_objects() -> None:
    for name in mqtt.__all__:
        exported = getattr(mqkit.widgets, name, None)
        assert exported is None or exported is getattr(mqtt, name), name
    assert mqtt.TopicFilterModel is mqkit.widgets.TopicFilterModel
