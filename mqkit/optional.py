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
        found = importlib.import_module(module)
    except ImportError:
        found = None
    # A folder of the same name on sys.path (the repository's docker/, seen from a checkout)
    # imports as a namespace package, which has no __file__: that is not the package.
    if found is None or getattr(found, "__file__", None) is None:
        extra = EXTRAS[module]
        raise MissingDependency(
            f"{purpose} needs the Python package {module!r}, which is not installed.",
            hint=f"pip install 'mqkit[{extra}]' (or: pip install {module})")
    return found
