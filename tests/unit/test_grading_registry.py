"""The check registry and results (check functions here are plain functions, no broker)."""

from __future__ import annotations

import pytest

from mqkit import Endpoints
from mqkit.grading import (
    Check,
    CheckFailed,
    NotYet,
    Status,
    all_checks,
    checks_for_lab,
    get_check,
    self_check,
)

ENDPOINTS = Endpoints("amqp://u:p@127.0.0.1:1/%2F", "mqtt://u:p@127.0.0.1:2", "", "external")


def _passes(endpoints, queue="q"):
    return f"queue {queue!r} is fine"


def _not_yet(endpoints):
    raise NotYet("no queue 'q'")


def _broken(endpoints):
    raise ConnectionRefusedError("refused")


def test_results_for_pass_not_yet_and_error() -> None:
    passed = Check("99.a", "99", "a", "do a", _passes, points=2, params={"queue": "x"}).run(
        ENDPOINTS)
    assert (passed.status, passed.points, passed.max_points) == (Status.PASSED, 2, 2)
    assert passed.line() == "✔ passed  99.a: queue 'x' is fine"
    failed = Check("99.b", "99", "b", "declare it", _not_yet).run(ENDPOINTS)
    assert failed.status is Status.FAILED
    assert failed.points == 0
    assert failed.line() == "✘ not yet  99.b: no queue 'q' Hint: declare it"
    error = Check("99.c", "99", "c", "h", _broken).run(ENDPOINTS)
    assert error.status is Status.ERROR
    assert error.line().startswith("⚠ could not check  99.c: ConnectionRefusedError: refused")
    assert error.to_dict()["status"] == "error"


def test_params_override_defaults() -> None:
    check = Check("99.a", "99", "a", "h", _passes, params={"queue": "x"})
    assert check.run(ENDPOINTS, queue="y").message == "queue 'y' is fine"


def test_assert_passed_raises_an_assertion_error() -> None:
    with pytest.raises(CheckFailed, match="not yet") as info:
        Check("99.b", "99", "b", "h", _not_yet).assert_passed(ENDPOINTS)
    assert isinstance(info.value, AssertionError)
    assert info.value.result.status is Status.FAILED


def test_self_check_shows_one_line_and_never_raises() -> None:
    broken = self_check(Check("99.c", "99", "c", "h", _broken), ENDPOINTS)
    assert repr(broken).startswith("⚠ could not check  99.c")
    unknown = self_check("99.no-such-check", ENDPOINTS)
    assert unknown.status is Status.ERROR
    assert repr(unknown).startswith("⚠ could not check  99.no-such-check: no check")
    assert "\n" not in repr(unknown)


def test_builtin_checks_are_registered_per_lab() -> None:
    ids = [c.id for c in all_checks()]
    assert ids == sorted(ids)
    assert {"00.brokers-reachable", "02.durable-queue", "03.all-acked"} <= set(ids)
    assert all(c.id.startswith(c.lab + ".") for c in all_checks())
    assert [c.id for c in checks_for_lab("02")] == [
        "02.durable-queue", "02.quorum-queue", "02.survives-restart"]
    with pytest.raises(KeyError, match="known"):
        get_check("nope")
