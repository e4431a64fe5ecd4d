"""``mqkit.start_brokers`` as a notebook cell calls it: with live progress while it waits.

The broker layer reports its steps (:mod:`mqkit.brokers.progress`); in an IPython kernel this
wrapper shows them (:class:`~mqkit.widgets.start_progress.StartProgress`). Elsewhere it is
:func:`mqkit.brokers.launcher.start_brokers` unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

from mqkit.brokers import launcher
from mqkit.brokers.progress import reporting_to
from mqkit.endpoints import Endpoints


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


@functools.wraps(launcher.start_brokers)
def start_brokers(backend: str | None = None, **settings: Any) -> Endpoints:  # noqa: D103
    if not _in_kernel():
        return launcher.start_brokers(backend, **settings)
    from mqkit.widgets.start_progress import StartProgress

    progress = StartProgress()
    try:
        with reporting_to(progress):
            endpoints = launcher.start_brokers(backend, **settings)
    except BaseException as error:
        progress.finish(error)
        raise
    progress.finish()
    return endpoints
