"""Self-checks and grading: checks of real broker state, with results that never raise.

In a notebook, :func:`self_check` returns a result that shows as one line (``✔ passed …``
or ``✘ not yet … Hint: …``); an autograder calls :meth:`Check.assert_passed` or
:meth:`Check.run` on the same checks. A check is a function registered with the
:func:`check` decorator; its lab is the first part of its id.

Example:
    >>> from mqkit.grading import self_check
    >>> self_check("02.durable-queue", endpoints)   # doctest: +SKIP
    ✔ passed  02.durable-queue: queue 'lab02.orders' is a durable classic queue
"""

from mqkit.grading.registry import (
    Check,
    CheckFailed,
    CheckResult,
    NotYet,
    Status,
    all_checks,
    check,
    checks_for_lab,
    get_check,
    register,
    self_check,
)

__all__ = [
    "Check",
    "CheckFailed",
    "CheckResult",
    "NotYet",
    "Status",
    "all_checks",
    "check",
    "checks_for_lab",
    "get_check",
    "register",
    "self_check",
]
