"""What the AMQP and the MQTT publisher forms share: a log of the last results, and close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import ipywidgets as widgets

T = TypeVar("T")

#: How many results a form keeps below its button.
KEPT_RESULTS = 10
#: A field's label as wide as its text (the default 80 px cut "content type" to "content ty…").
LABEL_STYLE = {"description_width": "initial"}
#: How many characters a wide field shows at least, its label included: a lab's topic such as
#: ``lab10/run-3c57b2/sensors/kitchen/temperature`` (45) fits with room to spare.
WIDE_CHARS = 64


def wide_layout() -> widgets.Layout:
    """The layout of a field that holds names or text: the form's width, at least ``WIDE_CHARS``.

    ``auto``, not ``100%``: the flex column stretches the field to the form minus its margin,
    where ``100%`` pushed the box's right border out of the cell.
    """
    return widgets.Layout(width="auto", min_width=f"{WIDE_CHARS}ch")


class PublishForm(widgets.VBox):
    """Base of :class:`~mqkit.widgets.Publisher` and :class:`~mqkit.widgets.MQTTPublisher`.

    A subclass builds its fields and ``self.output`` (an ``Output``), sets ``self.model``
    (something with ``close()``), and publishes through :meth:`_submit`.
    """

    model: Any
    output: widgets.Output

    def _submit(self, publish: Callable[[], T]) -> T | None:
        """Run ``publish``; show its result, or the error, below the button (never raise)."""
        try:
            result = publish()
        except Exception as exc:
            self._show(f"ERROR {type(exc).__name__}: {exc}")
            return None
        self._show(str(result))
        return result

    def _show(self, line: str) -> None:
        self.output.outputs = self.output.outputs[-(KEPT_RESULTS - 1):]
        self.output.append_stdout(line + "\n")

    def close(self) -> None:
        """Close the publisher's connection (or client) and the widget."""
        self.model.close()
        super().close()
