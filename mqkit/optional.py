"""Optional dependencies: imported when needed, with the extra that installs them.

The core install holds what the labs need. The Docker SDK (``mqkit[docker]``), jupytext
(``mqkit[authoring]``) and nbclient (``mqkit[grading]``) are extras; using a part that needs
one without it raises :class:`~mqkit.exceptions.MissingDependency` naming the command.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mqkit.exceptions import MissingDependency

#: Which extra installs which module.
EXTRAS = {"docker": "docker", "jupytext": "authoring", "nbclient": "grading"}


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` saying how to install it.

    Args:
        module: the top-level module (``docker``, ``jupytext``, ``nbclient``).
        purpose: what needs it, for the message (``the docker backend``).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS[module]
        raise MissingDependency(
            f"{purpose} needs the Python package {module!r}, which is not installed.",
            hint=f"pip install 'mqkit[{extra}]' (or: pip install {module})") from None
