"""What a broker start is doing right now, for whoever shows it.

The lifecycle reports its steps ("starting RabbitMQ, Mosquitto…", "RabbitMQ ready") through
:func:`report`; a notebook shows them live (:mod:`mqkit.widgets.start_progress`), the
command line logs them. Reports go to the listener installed with :func:`reporting_to` in
the calling context (a context variable, so two notebooks' threads never mix), and to the
log.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

_listener: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "mqkit_start_progress", default=None)


def report(step: str) -> None:
    """Tell the current listener (and the log) what the start is doing."""
    log.info("%s", step)
    listener = _listener.get()
    if listener is not None:
        try:
            listener(step)
        except Exception as exc:  # showing progress must never break a start
            log.debug("progress listener failed: %r", exc)


@contextlib.contextmanager
def reporting_to(listener: Callable[[str], None]) -> Iterator[None]:
    """Send the steps of the starts made in this block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
