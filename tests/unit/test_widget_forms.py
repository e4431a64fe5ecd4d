"""The publisher forms are sized for what they hold: labels, placeholders and lab topics show
in full (no browser: the layout and style choices that guarantee it)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import ipywidgets as widgets
import pytest

from mqkit.widgets import MQTTPublisher, Publisher
from mqkit.widgets import mqtt_publisher as mqtt_publisher_module
from mqkit.widgets import publisher as publisher_module

#: A lab 10 topic, a little longer than the lab's own: 50 characters.
TOPIC = "lab10/run-3c57b2/sensors/kitchen-north/temperature"
#: Characters the label takes beyond its text (padding, gap before the box).
LABEL_MARGIN = 2


@pytest.fixture
def forms(monkeypatch: pytest.MonkeyPatch):
    """Both forms, built without a broker: only the layout is looked at, so the models (which
    would connect at once) are replaced by an unconnected stand-in."""
    unconnected = SimpleNamespace(close=lambda: None)
    monkeypatch.setattr(publisher_module, "PublisherModel", lambda *a, **k: unconnected)
    monkeypatch.setattr(mqtt_publisher_module, "MQTTPublisherModel",
                        lambda *a, **k: unconnected)
    made = [Publisher(), MQTTPublisher(topic=TOPIC)]
    yield made
    for form in made:
        form.close()


def fields(widget: widgets.Widget) -> list[widgets.DescriptionWidget]:
    """Every text box, text area and dropdown in ``widget``, however deeply nested."""
    if isinstance(widget, (widgets.Text, widgets.Textarea, widgets.Dropdown)):
        return [widget]
    return [f for child in getattr(widget, "children", ()) for f in fields(child)]


def shown_chars(field: widgets.DescriptionWidget) -> float:
    """How many characters the field is guaranteed to span, label included (0: unknown)."""
    sizes = [field.layout.width, field.layout.min_width]
    return max((float(m.group(1)) for s in sizes if s
                for m in [re.fullmatch(r"([\d.]+)ch", s)] if m), default=0)


def test_every_label_is_as_wide_as_its_text(forms) -> None:
    seen = [f for form in forms for f in fields(form)]
    assert {f.description for f in seen} >= {"exchange", "routing key", "headers", "body",
                                             "content type", "topic", "payload", "QoS"}
    for field in seen:
        assert field.style.description_width == "initial", field.description


def test_the_headers_box_shows_its_placeholder(forms) -> None:
    headers = forms[0].headers
    lines = headers.placeholder.splitlines()
    assert headers.rows >= len(lines)
    assert shown_chars(headers) >= (max(map(len, lines)) + len(headers.description)
                                    + LABEL_MARGIN)


@pytest.mark.parametrize(("form", "name"), [(1, "topic"), (0, "routing_key"), (0, "exchange")])
def test_name_boxes_hold_a_50_character_topic(forms, form, name) -> None:
    assert len(TOPIC) == 50
    box = getattr(forms[form], name)
    assert shown_chars(box) >= len(TOPIC) + len(box.description) + LABEL_MARGIN
    assert box.layout.width in (None, "auto", "100%")  # and no fixed width that is smaller

