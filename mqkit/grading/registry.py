"""Checks and their results: the small registry that self-checks and the grader share.

A *check* examines real broker state and returns a :class:`CheckResult`; a wrong answer is
never an exception. The check function itself raises :class:`NotYet` to say "not yet" and
returns a short message when the work is done; anything else it raises becomes an ``error``
result (the check could not look, e.g. the broker is down).

Checks are registered by the :func:`check` decorator, which leaves the function as it was, so
one function can back several checks; the lab number is the id's first part::

    @check("02.durable-queue", "a durable queue",
           hint="Declare the queue with durable=True.", params={"queue": "lab02.orders"})
    def durable_queue(endpoints, queue): ...

Registrations go to the global registry, except inside :func:`collecting`, which sends them to
a collection of its own: that is how the grader reads an instructor's extra-checks file
without showing its checks to students. The built-in check modules are imported on first use
(:func:`all_checks`, :func:`get_check`), not when this module is, because they import it.

Example:
    >>> from mqkit.grading import get_check
    >>> result = get_check("02.durable-queue").run(endpoints)   # doctest: +SKIP
    >>> print(result)                                           # doctest: +SKIP
    ✔ passed  02.durable-queue: queue 'lab02.orders' is durable
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import html
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeVar

from mqkit.endpoints import Endpoints
from mqkit.exceptions import ConfigError, MQKitError

log = logging.getLogger(__name__)

#: A check id: the two-digit lab number, a dot, a name (``02.durable-queue``).
CHECK_ID = re.compile(r"\d\d\.[A-Za-z0-9_][A-Za-z0-9_.-]*")

F = TypeVar("F", bound=Callable[..., str])


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
    #: In a notebook that ``mqkit grade`` runs: the grader runs the check itself, from its
    #: own process, right after this cell (see :data:`GRADER_RUNS_CHECKS`).
    DEFERRED = "deferred"


_MARKS = {Status.PASSED: "✔ passed", Status.FAILED: "✘ not yet", Status.ERROR: "⚠ could not check",
          Status.DEFERRED: "… left to the grader"}
# Mid-tone colours for the HTML result's left border, legible on light and dark themes alike.
# The border only repeats what the symbol and the word already say: never colour alone.
_ACCENTS = {Status.PASSED: "#2da44e", Status.FAILED: "#e5534b", Status.ERROR: "#bf8700",
            Status.DEFERRED: "#888888"}
# Greys with alpha sit on any background; text keeps the theme's own colour (currentColor).
_NEUTRAL = "rgba(128, 128, 128, 0.45)"


@dataclass(frozen=True, repr=False)
class CheckResult:
    """What one check found.

    Attributes:
        check_id: the check's id, e.g. ``02.durable-queue``.
        status: passed, failed (not yet) or error (the check could not look).
        message: what was seen, in one sentence.
        hint: the first hint when the check did not pass ('' when it did): what is missing,
            in terms of the concept.
        points: points awarded (the check's points when passed, else 0).
        max_points: the check's points.
        hints: the hint levels asked for so far (the first level by default); levels not
            asked for are not in the result at all.
        more_hints: how many more levels there are (only the number).
        title: what the check wants, in a few words ('' when unknown); shown in the HTML
            rendering, not in :meth:`line`, and not compared.
    """

    check_id: str
    status: Status
    message: str
    hint: str = ""
    points: int = 0
    max_points: int = 1
    hints: tuple[str, ...] = ()
    more_hints: int = 0
    # Last and defaulted, so positional constructions keep working; descriptive only, so
    # results stay equal whatever title they were run under.
    title: str = field(default="", compare=False)

    @property
    def is_passed(self) -> bool:
        """True when the check passed."""
        return self.status is Status.PASSED

    def line(self) -> str:
        """One readable line: ``✔ passed  id: message`` or ``✘ not yet  id: message Hint: …``.

        Each hint level asked for follows (``Hint 2: …``), then how to ask for the next.
        """
        text = f"{_MARKS[self.status]}  {self.check_id}: {self.message}"
        if self.is_passed or not self.hint:
            return text
        shown = self.hints or (self.hint,)
        text += "".join(f" Hint{'' if level == 1 else f' {level}'}: {hint}"
                        for level, hint in enumerate(shown, start=1))
        if self.more_hints:
            text += f" (more: hint={len(shown) + 1})"
        return text

    def _shown_hints(self) -> tuple[str, ...]:
        # The levels line() shows too: none for a pass, else those asked for (or the one hint).
        if self.is_passed or not self.hint:
            return ()
        return self.hints or (self.hint,)

    def _repr_html_(self) -> str:
        """A small self-contained block for notebooks; :meth:`line` stays the plain text.

        The verdict is a symbol and a word (colour only repeats it), then the title, the id,
        the message, and the hint levels asked for so far in a collapsible part with how to
        ask for the next. Inline styles only, no script; every text is escaped.
        """
        esc = html.escape
        mark = esc(_MARKS[self.status])
        # Normal wrapping, set explicitly: JupyterLab's text outputs break words anywhere.
        box = (f"border: 1px solid {_NEUTRAL}; border-left: 4px solid {_ACCENTS[self.status]}; "
               "border-radius: 4px; padding: 0.4em 0.75em; margin: 0.2em 0; max-width: 48em; "
               "color: inherit; line-height: 1.45; white-space: normal; "
               "overflow-wrap: normal; word-break: normal")
        code = (f"font-size: 0.9em; padding: 0 0.25em; border: 1px solid {_NEUTRAL}; "
                "border-radius: 3px; background: transparent; color: inherit")
        head = f'<strong style="white-space: nowrap">{mark}</strong>'
        if self.title:
            head += f" &middot; <strong>{esc(self.title)}</strong>"
        head += f' <code style="{code}">{esc(self.check_id)}</code>'
        parts = [f'<div class="mqkit-check" style="{box}">', f"<div>{head}</div>",
                 f'<div style="margin-top: 0.2em">{esc(self.message)}</div>']
        shown = self._shown_hints()
        if shown:
            total = len(shown) + self.more_hints
            summary = "Hint" if total == 1 else (
                f"Hint{'s' if len(shown) > 1 else ''} ({len(shown)} of {total})")
            # Open when the student asked for more than the first level: they want to read it.
            opened = " open" if len(shown) > 1 else ""
            parts.append(f'<details{opened} style="margin-top: 0.35em">'
                         f'<summary style="cursor: pointer">{summary}</summary>')
            if len(shown) == 1:
                parts.append(f'<p style="margin: 0.3em 0">{esc(shown[0])}</p>')
            else:
                items = "".join(f"<li>{esc(level)}</li>" for level in shown)
                parts.append(f'<ol style="margin: 0.3em 0; padding-left: 1.6em">{items}</ol>')
            if self.more_hints:
                parts.append(f'<p style="margin: 0.3em 0">More help: run the check again with '
                             f'<code style="{code}">self_check(..., hint={len(shown) + 1})'
                             "</code></p>")
            parts.append("</details>")
        parts.append("</div>")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for gradebooks and JSON)."""
        return {"check_id": self.check_id, "status": self.status.value, "message": self.message,
                "hint": self.hint, "hints": list(self.hints), "points": self.points,
                "max_points": self.max_points}

    def __str__(self) -> str:
        return self.line()

    def __repr__(self) -> str:
        # What a notebook shows for a self-check cell: the one readable line.
        return self.line()


@dataclass(frozen=True)
class Check:
    """One check of real broker state.

    Usually made by the :func:`check` decorator; construct one directly for a check object
    that is not registered (an extra-checks file may define them at module level).

    Attributes:
        id: unique id, ``NN.name`` with the lab number first (``03.all-acked``).
        title: what the check wants, in a few words.
        hint: the next step for a student whose work does not pass yet: one text, or
            graduated levels, first what is missing in terms of the concept, then more
            concrete, and only the last with code (see :attr:`hints`).
        func: ``func(endpoints, **params) -> str``; raises :class:`NotYet` when not passed.
        points: points for the grader (keyword only, as are the fields after it).
        visible: ``False`` for hidden checks that only the grader runs.
        params: default keyword arguments for ``func`` (queue names of the lab).
        read_only: the check only looks: it takes none of the student's messages, leaves
            none behind and changes nothing they declared (its probes use temporary queues
            and clients of its own). Only such checks may run on a student's namespace
            while the student works (the classroom's progress board).

    Raises:
        ConfigError: the id is not of the form ``NN.name``.
        TypeError: ``func`` is not callable.
    """

    id: str
    title: str
    hint: str | tuple[str, ...]
    func: Callable[..., str]
    # Keyword only: a call in the old form Check(id, lab, title, hint, func) fails loudly.
    _: KW_ONLY
    points: int = 1
    visible: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    read_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not CHECK_ID.fullmatch(self.id):
            raise ConfigError(f"Check id {self.id!r} is not of the form NN.name.",
                              hint="Start the id with the two-digit lab number and a dot, "
                                   "e.g. '02.durable-queue'; the lab is taken from it.")
        if not callable(self.func):
            raise TypeError(f"check {self.id!r}: func must be callable, got {self.func!r} "
                            "(the arguments are id, title, hint, func; the lab comes from "
                            "the id)")

    @property
    def hints(self) -> tuple[str, ...]:
        """The hint levels, most general first."""
        return (self.hint,) if isinstance(self.hint, str) else tuple(self.hint)

    @property
    def lab(self) -> str:
        """The lab number, taken from the id: ``"03"`` for ``03.all-acked``."""
        return self.id[:2]

    def run(self, endpoints: Endpoints, *, hint_level: int = 1, **params: Any) -> CheckResult:
        """Run the check; never raises (an unexpected error becomes an ``error`` result).

        Args:
            endpoints: the brokers (the student's namespace when grading).
            hint_level: how many hint levels a "not yet" result carries (at least 1).
            **params: keyword arguments for the check function, over :attr:`params`.
        """
        arguments = {**self.params, **params}
        try:
            message = self.func(endpoints, **arguments)
        except NotYet as verdict:
            hints = self.hints
            shown = hints[:max(1, hint_level)]
            return CheckResult(self.id, Status.FAILED, str(verdict), hints[0], 0, self.points,
                               shown, len(hints) - len(shown), title=self.title)
        except Exception as exc:
            log.info("check %s could not run: %r", self.id, exc)
            return CheckResult(self.id, Status.ERROR, _describe(exc),
                               "Is the broker running? Run mqkit.start_brokers() again.",
                               0, self.points, title=self.title)
        return CheckResult(self.id, Status.PASSED, message, "", self.points, self.points,
                           title=self.title)

    def assert_passed(self, endpoints: Endpoints, **params: Any) -> CheckResult:
        """Run the check and raise :class:`CheckFailed` unless it passed (for autograders)."""
        result = self.run(endpoints, **params)
        if not result.is_passed:
            raise CheckFailed(result)
        return result

    def self_check(self, endpoints: Endpoints, *, hint: int = 1, **params: Any) -> CheckResult:
        """Run the check for a notebook cell; never raises.

        The result displays as its one line (``✔ passed …`` / ``✘ not yet … Hint: …``) when
        it is the cell's last expression, so nothing is printed from library code.

        Args:
            endpoints: the brokers.
            hint: how many hint levels to show when it does not pass (``hint=2`` asks for
                the second, more concrete one).
            **params: keyword arguments for the check function.
        """
        if os.environ.get(GRADER_RUNS_CHECKS) == "1":
            # Under `mqkit grade` the verdict that counts is the grader's, taken right after
            # this cell; running the check here too would act twice (a check may stop a
            # worker to test it) and prove nothing (the kernel is the submission's).
            return CheckResult(self.id, Status.DEFERRED, "the grader runs this check after "
                               "this cell", "", 0, self.points, title=self.title)
        result = self.run(endpoints, hint_level=hint, **params)
        from mqkit.grading.progress import report_verdict

        report_verdict(result)  # to the classroom's board, when a card names one
        return result


def _describe(exc: Exception) -> str:
    text = exc.message if isinstance(exc, MQKitError) else f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__


#: Set to ``1`` in the kernels that ``mqkit grade`` runs: :meth:`Check.self_check` then leaves
#: the check to the grader.
GRADER_RUNS_CHECKS = "MQKIT_GRADER_RUNS_CHECKS"

#: The global registry: the built-in checks (and any registered outside :func:`collecting`).
_REGISTRY: dict[str, Check] = {}
# Where register() puts checks; None means _REGISTRY. A context variable rather than a
# global switch, so loading an extra-checks file cannot redirect another thread's imports.
_target: contextvars.ContextVar[dict[str, Check] | None] = contextvars.ContextVar(
    "mqkit_check_target", default=None)


def register(check: Check) -> Check:
    """Add a check object to the current registry (ids are unique there) and return it.

    The current registry is the global one, or the collection of an enclosing
    :func:`collecting` block.

    Raises:
        ValueError: another check with this id is already registered.
    """
    registry = _target.get()
    if registry is None:
        registry = _REGISTRY
    if check.id in registry and registry[check.id] is not check:
        raise ValueError(f"a check with id {check.id!r} is already registered")
    registry[check.id] = check
    return check


def check(check_id: str, title: str, hint: str | tuple[str, ...], *, points: int = 1,
          visible: bool = True, params: Mapping[str, Any] | None = None,
          read_only: bool = False) -> Callable[[F], F]:
    """Register a :class:`Check` of the decorated function; the function stays as it was.

    Decorators stack, so one reusable function can back several checks, and the decorator
    can be applied to a function defined elsewhere: ``check(...)(persistent_message)``.

    Args:
        check_id: ``NN.name``; the lab is the number before the dot.
        title: what the check wants, in a few words.
        hint: the next step for a student whose work does not pass yet, or a tuple of
            graduated levels (concept first, code last).
        points: points for the grader.
        visible: ``False`` for hidden checks that only the grader runs.
        params: default keyword arguments for the function.
        read_only: the check only looks (see :attr:`Check.read_only`).

    Returns:
        A decorator that registers the check (see :func:`register`) and returns the function.

    Raises:
        ConfigError: the id is not of the form ``NN.name``.
        ValueError: another check with this id is already registered.

    Example:
        >>> @check("02.durable-queue", "a durable queue", hint="Declare it durable=True.",
        ...        params={"queue": "lab02.orders"})
        ... @check("02.quorum-queue", "a quorum queue", hint="x-queue-type: quorum.",
        ...        params={"queue": "lab02.quorum", "queue_type": "quorum"})
        ... def durable_queue(endpoints, queue, queue_type=None):   # doctest: +SKIP
        ...     ...
    """

    def decorate(func: F) -> F:
        register(Check(check_id, title, hint, func, points=points, visible=visible,
                       params=dict(params or {}), read_only=read_only))
        return func

    return decorate


@contextlib.contextmanager
def collecting() -> Iterator[dict[str, Check]]:
    """Send every registration inside the block to a fresh collection instead of the registry.

    The grader runs an instructor's extra-checks file inside this block: its ``@check``
    functions and ``register()`` calls land in the yielded dict (id -> check), not among the
    checks students see. The built-in checks are loaded first, so a file that imports a
    check module to reuse its functions does not collect the built-ins.

    Yields:
        The collection, filled while the block runs.
    """
    _load_builtin()
    collected: dict[str, Check] = {}
    token = _target.set(collected)
    try:
        yield collected
    finally:
        _target.reset(token)


def _load_builtin() -> None:
    # Imported here, not at the top: the check modules import this module to register.
    from mqkit.grading import amqp, concepts, delivery, exchanges, mqtt, mqtt_workers  # noqa: F401


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


def self_check(check: str | Check, endpoints: Endpoints, *, hint: int = 1,
               **params: Any) -> CheckResult:
    """Run a check by id (or object) for a notebook cell; never raises.

    Put it last in its cell: the notebook then shows the result's one line. A "not yet"
    shows the first hint level (what is missing, in terms of the concept); ``hint=2`` and up
    ask for more concrete ones, and only the last shows code.

    Example:
        >>> self_check("02.durable-queue", endpoints)   # doctest: +SKIP
        ✔ passed  02.durable-queue: queue 'lab02.orders' is a durable classic queue
        >>> self_check("02.durable-queue", endpoints, hint=2)   # doctest: +SKIP
    """
    try:
        found = get_check(check) if isinstance(check, str) else check
    except KeyError as exc:
        return CheckResult(str(check), Status.ERROR, exc.args[0],
                           "Check the id in the self-check cell.", 0, 0)
    return found.self_check(endpoints, hint=hint, **params)
