"""Checks and their results: the small registry that self-checks and the grader share.

A *check* examines real broker state and returns a :class:`CheckResult`; a wrong answer is
never an exception. The check function itself raises :class:`NotYet` to say "not yet" and
returns a short message when the work is done; anything else it raises becomes an ``error``
result (the check could not look, e.g. the broker is down).

Example:
    >>> from mqkit.grading import get_check
    >>> result = get_check("02.durable-queue").run(endpoints)   # doctest: +SKIP
    >>> print(result)                                           # doctest: +SKIP
    ✔ passed  02.durable-queue: queue 'lab02.orders' is durable
"""

from __future__ import annotations

import enum
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mqkit.endpoints import Endpoints

log = logging.getLogger(__name__)

#: Modules whose import registers the built-in checks.
BUILTIN_MODULES = ("mqkit.grading.amqp", "mqkit.grading.exchanges", "mqkit.grading.mqtt",
                   "mqkit.grading.delivery")


class NotYet(Exception):
    """Raised by a check function when the student's work is not (yet) what it should be."""


class CheckFailed(AssertionError):
    """Raised by :meth:`Check.assert_passed` when a check does not pass."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        super().__init__(str(result))


class Status(enum.StrEnum):
    """The outcome of one check."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


_MARKS = {Status.PASSED: "✔ passed", Status.FAILED: "✘ not yet", Status.ERROR: "⚠ could not check"}


@dataclass(frozen=True, repr=False)
class CheckResult:
    """What one check found.

    Attributes:
        check_id: the check's id, e.g. ``02.durable-queue``.
        status: passed, failed (not yet) or error (the check could not look).
        message: what was seen, in one sentence.
        hint: the next step when the check did not pass ('' when it did).
        points: points awarded (the check's points when passed, else 0).
        max_points: the check's points.
    """

    check_id: str
    status: Status
    message: str
    hint: str = ""
    points: int = 0
    max_points: int = 1

    @property
    def is_passed(self) -> bool:
        """True when the check passed."""
        return self.status is Status.PASSED

    def line(self) -> str:
        """One readable line: ``✔ passed  id: message`` or ``✘ not yet  id: message Hint: …``."""
        text = f"{_MARKS[self.status]}  {self.check_id}: {self.message}"
        return f"{text} Hint: {self.hint}" if self.hint and not self.is_passed else text

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for gradebooks and JSON)."""
        return {"check_id": self.check_id, "status": self.status.value, "message": self.message,
                "hint": self.hint, "points": self.points, "max_points": self.max_points}

    def __str__(self) -> str:
        return self.line()

    def __repr__(self) -> str:
        # What a notebook shows for a self-check cell: the one readable line.
        return self.line()


@dataclass(frozen=True)
class Check:
    """One check of real broker state.

    Attributes:
        id: unique id, ``NN.name`` with the lab number first (``03.all-acked``).
        lab: the lab number, ``"03"``.
        title: what the check wants, in a few words.
        hint: the next step for a student whose work does not pass yet.
        func: ``func(endpoints, **params) -> str``; raises :class:`NotYet` when not passed.
        points: points for the grader.
        visible: ``False`` for hidden checks that only the grader runs.
        params: default keyword arguments for ``func`` (queue names of the lab).
    """

    id: str
    lab: str
    title: str
    hint: str
    func: Callable[..., str]
    points: int = 1
    visible: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    def run(self, endpoints: Endpoints, **params: Any) -> CheckResult:
        """Run the check; never raises (an unexpected error becomes an ``error`` result)."""
        arguments = {**self.params, **params}
        try:
            message = self.func(endpoints, **arguments)
        except NotYet as verdict:
            return CheckResult(self.id, Status.FAILED, str(verdict), self.hint, 0, self.points)
        except Exception as exc:
            log.info("check %s could not run: %r", self.id, exc)
            return CheckResult(self.id, Status.ERROR, _describe(exc),
                               "Is the broker running? Run mqkit.start_brokers() again.",
                               0, self.points)
        return CheckResult(self.id, Status.PASSED, message, "", self.points, self.points)

    def assert_passed(self, endpoints: Endpoints, **params: Any) -> CheckResult:
        """Run the check and raise :class:`CheckFailed` unless it passed (for autograders)."""
        result = self.run(endpoints, **params)
        if not result.is_passed:
            raise CheckFailed(result)
        return result

    def self_check(self, endpoints: Endpoints, **params: Any) -> CheckResult:
        """Run the check for a notebook cell; never raises.

        The result displays as its one line (``✔ passed …`` / ``✘ not yet … Hint: …``) when
        it is the cell's last expression, so nothing is printed from library code.
        """
        return self.run(endpoints, **params)


def _describe(exc: Exception) -> str:
    from mqkit.exceptions import MQKitError

    text = exc.message if isinstance(exc, MQKitError) else f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__


_REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    """Add a check to the registry (ids are unique) and return it."""
    if check.id in _REGISTRY and _REGISTRY[check.id] is not check:
        raise ValueError(f"a check with id {check.id!r} is already registered")
    if not check.id.startswith(f"{check.lab}."):
        raise ValueError(f"check id {check.id!r} must start with its lab number {check.lab!r}")
    _REGISTRY[check.id] = check
    return check


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def all_checks(include_hidden: bool = True) -> list[Check]:
    """Every registered check, sorted by id."""
    _load_builtin()
    return [c for _, c in sorted(_REGISTRY.items()) if include_hidden or c.visible]


def checks_for_lab(lab: str, include_hidden: bool = True) -> list[Check]:
    """The checks of one lab (``"02"``), sorted by id."""
    return [c for c in all_checks(include_hidden) if c.lab == lab]


def get_check(check_id: str) -> Check:
    """The check with this id.

    Raises:
        KeyError: no such check (the message lists the known ids).
    """
    _load_builtin()
    try:
        return _REGISTRY[check_id]
    except KeyError:
        raise KeyError(f"no check {check_id!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def self_check(check: str | Check, endpoints: Endpoints, **params: Any) -> CheckResult:
    """Run a check by id (or object) for a notebook cell; never raises.

    Put it last in its cell: the notebook then shows the result's one line.

    Example:
        >>> self_check("02.durable-queue", endpoints)   # doctest: +SKIP
        ✔ passed  02.durable-queue: queue 'lab02.orders' is a durable classic queue
    """
    try:
        found = get_check(check) if isinstance(check, str) else check
    except KeyError as exc:
        return CheckResult(str(check), Status.ERROR, exc.args[0],
                           "Check the id in the self-check cell.", 0, 0)
    return found.self_check(endpoints, **params)
