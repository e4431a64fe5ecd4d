"""The check registry and results (check functions here are plain functions, no broker)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mqkit.grading
from mqkit import ConfigError, Endpoints
from mqkit.grading import (
    Check,
    CheckFailed,
    NotYet,
    Status,
    all_checks,
    check,
    checks_for_lab,
    get_check,
    register,
    self_check,
)
from mqkit.grading import registry as registry_module
from mqkit.grading.amqp import durable_queue, persistent_message
from mqkit.grading.grader import lab_checks, load_extra_checks
from mqkit.grading.registry import collecting

ENDPOINTS = Endpoints("amqp://u:p@127.0.0.1:1/%2F", "mqtt://u:p@127.0.0.1:2", "", "external")
EXTRA = Path(__file__).resolve().parents[1] / "grading" / "extra_checks.py"


def _passes(endpoints, queue="q"):
    return f"queue {queue!r} is fine"


def _not_yet(endpoints):
    raise NotYet("no queue 'q'")


def _broken(endpoints):
    raise ConnectionRefusedError("refused")


@pytest.fixture
def global_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Check]:
    """A copy of the global registry (built-ins loaded) that the test may add to."""
    all_checks()
    copy = dict(registry_module._REGISTRY)
    monkeypatch.setattr(registry_module, "_REGISTRY", copy)
    return copy


def test_results_for_pass_not_yet_and_error() -> None:
    passed = Check("99.a", "a", "do a", _passes, points=2, params={"queue": "x"}).run(ENDPOINTS)
    assert (passed.status, passed.points, passed.max_points) == (Status.PASSED, 2, 2)
    assert passed.line() == "✔ passed  99.a: queue 'x' is fine"
    failed = Check("99.b", "b", "declare it", _not_yet).run(ENDPOINTS)
    assert failed.status is Status.FAILED
    assert failed.points == 0
    assert failed.line() == "✘ not yet  99.b: no queue 'q' Hint: declare it"
    error = Check("99.c", "c", "h", _broken).run(ENDPOINTS)
    assert error.status is Status.ERROR
    assert error.line().startswith("⚠ could not check  99.c: ConnectionRefusedError: refused")
    assert error.to_dict()["status"] == "error"


def test_params_override_defaults() -> None:
    check = Check("99.a", "a", "h", _passes, params={"queue": "x"})
    assert check.run(ENDPOINTS, queue="y").message == "queue 'y' is fine"


def test_assert_passed_raises_an_assertion_error() -> None:
    with pytest.raises(CheckFailed, match="not yet") as info:
        Check("99.b", "b", "h", _not_yet).assert_passed(ENDPOINTS)
    assert isinstance(info.value, AssertionError)
    assert info.value.result.status is Status.FAILED


def test_self_check_shows_one_line_and_never_raises() -> None:
    broken = self_check(Check("99.c", "c", "h", _broken), ENDPOINTS)
    assert repr(broken).startswith("⚠ could not check  99.c")
    unknown = self_check("99.no-such-check", ENDPOINTS)
    assert unknown.status is Status.ERROR
    assert repr(unknown).startswith("⚠ could not check  99.no-such-check: no check")
    assert "\n" not in repr(unknown)


def test_the_lab_is_taken_from_the_id() -> None:
    assert Check("03.all-acked", "t", "h", _passes).lab == "03"
    assert Check("02.hidden.orders_once", "t", "h", _passes).lab == "02"


@pytest.mark.parametrize("bad", ["2.durable", "02durable", "02.", "durable-queue", "002.x",
                                 "02. x", ""])
def test_an_id_without_its_lab_number_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"(?s)not of the form NN\.name.*'02\.durable-queue'"):
        Check(bad, "t", "h", _passes)


def test_the_old_form_with_a_lab_argument_fails_loudly() -> None:
    with pytest.raises(TypeError):
        Check("02.x", "02", "title", "hint", _passes)  # type: ignore[misc]
    with pytest.raises(TypeError, match="func must be callable"):
        Check("02.x", "02", "title", "hint")  # type: ignore[arg-type]


def test_the_decorator_registers_and_returns_the_function_unchanged(global_registry) -> None:
    def peek(endpoints, queue):
        return queue

    decorated = check("99.peek-a", "a", hint="ha", points=3, params={"queue": "qa"})(
        check("99.peek-b", "b", "hb", visible=False, params={"queue": "qb"})(peek))
    assert decorated is peek
    first, second = get_check("99.peek-a"), get_check("99.peek-b")
    assert (first.lab, first.title, first.hint, first.points, first.visible) == (
        "99", "a", "ha", 3, True)
    assert (second.points, second.visible) == (1, False)
    assert first.func is second.func is peek
    assert first.run(ENDPOINTS).message == "qa"
    assert second.run(ENDPOINTS).message == "qb"
    assert [c.id for c in checks_for_lab("99", include_hidden=False)] == ["99.peek-a"]


def test_ids_are_unique(global_registry) -> None:
    with pytest.raises(ValueError, match="already registered"):
        check("02.durable-queue", "again", "h")(_passes)
    with pytest.raises(ValueError, match="already registered"):
        register(Check("02.durable-queue", "again", "h", _passes))
    same = get_check("02.durable-queue")
    assert register(same) is same


def test_collecting_keeps_registrations_out_of_the_registry() -> None:
    with collecting() as collected:
        check("99.collected", "c", "h")(_passes)
        register(Check("99.registered", "r", "h", _passes))
    assert sorted(collected) == ["99.collected", "99.registered"]
    assert not {"99.collected", "99.registered"} & {c.id for c in all_checks()}
    # After the block, registrations go to the global registry again.
    assert registry_module._target.get() is None


def test_a_first_import_of_a_check_module_while_collecting_still_registers_globally() -> None:
    # A fresh interpreter: the extra file's `from mqkit.grading.amqp import ...` is the first
    # import of that module, and its built-ins must not end up in the collection.
    code = textwrap.dedent("""
        from mqkit.grading.registry import all_checks, collecting
        with collecting() as collected:
            from mqkit.grading.amqp import durable_queue
        print(len(collected), "02.durable-queue" in {c.id for c in all_checks()})
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["0", "True"]


def test_builtin_checks_are_registered_per_lab() -> None:
    ids = [c.id for c in all_checks()]
    assert ids == sorted(ids)
    assert {"00.brokers-reachable", "02.durable-queue", "03.all-acked"} <= set(ids)
    assert all(c.id.startswith(c.lab + ".") for c in all_checks())
    assert [c.id for c in checks_for_lab("02")] == [
        "02.durable-queue", "02.quorum-cases", "02.quorum-queue", "02.survives-restart"]
    with pytest.raises(KeyError, match="known"):
        get_check("nope")


def test_one_function_backs_several_builtin_checks() -> None:
    assert get_check("02.durable-queue").func is get_check("02.quorum-queue").func is \
        durable_queue
    assert get_check("02.survives-restart").func is get_check("09.survives-restart").func is \
        persistent_message
    assert get_check("02.quorum-queue").params == {"queue": "lab02.quorum",
                                                   "queue_type": "quorum"}


def test_the_public_api_is_sorted_and_documented() -> None:
    assert mqkit.grading.__all__ == sorted(mqkit.grading.__all__)
    for name in mqkit.grading.__all__:
        assert getattr(mqkit.grading, name).__doc__, name


# -- the instructor's extra checks -----------------------------------------------------------


def test_extra_checks_in_both_forms_stay_out_of_the_registry() -> None:
    loaded = load_extra_checks(EXTRA)
    assert [(c.id, c.lab, c.visible) for c in loaded] == [
        ("02.hidden-orders-once", "02", False), ("03.hidden-tasks-durable", "03", False)]
    assert not {c.id for c in loaded} & {c.id for c in all_checks()}
    assert [c.id for c in load_extra_checks(EXTRA, "03")] == ["03.hidden-tasks-durable"]


def test_lab_checks_takes_a_file_or_loaded_checks() -> None:
    checks, hidden = lab_checks("02", load_extra_checks(EXTRA))
    assert [c.id for c in checks] == ["02.durable-queue", "02.hidden-orders-once",
                                      "02.quorum-cases", "02.quorum-queue",
                                      "02.survives-restart"]
    assert hidden == {"02.hidden-orders-once"}
    from_file, _ = lab_checks("02", EXTRA)
    assert [c.id for c in from_file] == [c.id for c in checks]
    assert [c.id for c in lab_checks("03", str(EXTRA))[0]] == [
        "03.all-acked", "03.hidden-tasks-durable", "03.no-loss-on-crash", "03.priority-order"]


def _write(folder: Path, text: str) -> Path:
    path = folder / "extra.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_checks_file_is_executed_once_per_load(tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    extra = _write(tmp_path, f"""
        from pathlib import Path
        from mqkit.grading import check
        with Path({str(runs)!r}).open("a") as runs:
            runs.write("run\\n")
        @check("02.hidden-x", "x", "h")
        def x(endpoints):
            return "x"
    """)
    checks = load_extra_checks(extra)
    lab_checks("02", checks)
    lab_checks("02", checks)
    assert runs.read_text() == "run\n"


def test_bad_checks_files_are_config_errors(tmp_path: Path) -> None:
    twice = _write(tmp_path, """
        from mqkit.grading import Check, check
        @check("02.hidden-x", "x", "h")
        def x(endpoints):
            return "x"
        X = Check("02.hidden-x", "x again", "h", x)
    """)
    with pytest.raises(ConfigError, match=r"defines '02\.hidden-x' twice"):
        load_extra_checks(twice)
    builtin_id = _write(tmp_path, """
        from mqkit.grading import check
        from mqkit.grading.amqp import durable_queue
        check("02.durable-queue", "again", "h")(durable_queue)
    """)
    with pytest.raises(ConfigError, match="id of a built-in check"):
        lab_checks("02", builtin_id)
    old_form = _write(tmp_path, """
        from mqkit.grading import Check
        from mqkit.grading.amqp import durable_queue
        X = Check("02.hidden-x", "02", "title", "hint", durable_queue)
    """)
    with pytest.raises(ConfigError, match="failed to import: TypeError"):
        load_extra_checks(old_form)
    malformed = _write(tmp_path, """
        from mqkit.grading import check
        check("2.hidden-x", "x", "h")(print)
    """)
    with pytest.raises(ConfigError, match=r"ConfigError: Check id '2\.hidden-x' is not") as info:
        load_extra_checks(malformed)
    assert info.value.hint.startswith("Start the id with the two-digit lab number")
    with pytest.raises(ConfigError, match="No checks file"):
        load_extra_checks(tmp_path / "missing.py")
    with pytest.raises(ConfigError, match="No checks for lab '42'"):
        lab_checks("42")


def test_hints_are_graduated_and_only_the_asked_levels_are_shown() -> None:
    from mqkit.grading import Check, NotYet

    def never(endpoints, **_):
        raise NotYet("the queue got nothing")

    levels = ("which binding key pattern matches sports.*?", "use the # wildcard",
              "queue_bind(routing_key='sports.#')")
    graded = Check("99.graded", "graded", levels, never)
    first = graded.self_check(ENDPOINTS)
    assert first.hints == levels[:1]
    assert first.line().endswith("Hint: which binding key pattern matches sports.*? "
                                 "(more: hint=2)")
    assert "wildcard" not in first.line() + repr(first.to_dict())  # not hidden anywhere
    second = graded.self_check(ENDPOINTS, hint=2)
    assert "Hint 2: use the # wildcard (more: hint=3)" in second.line()
    assert "queue_bind" not in second.line()
    last = graded.self_check(ENDPOINTS, hint=9)
    assert last.hints == levels
    assert last.more_hints == 0
    assert "Hint 3: queue_bind(routing_key='sports.#')" in last.line()
    assert "more:" not in last.line()


def test_every_builtin_hint_starts_with_the_concept_and_ends_with_code() -> None:
    from mqkit.grading import all_checks

    for one in all_checks():
        if one.visible:
            assert len(one.hints) >= 2, one.id
            assert "(" not in one.hints[0] or "mqkit.start_brokers()" in one.hints[0], (
                one.id, "the first level names the idea, not a call")
            assert "(" in one.hints[-1] or "=" in one.hints[-1], (one.id, "code last")


def test_feedback_gives_the_hint_levels_the_instructor_chose(tmp_path) -> None:
    from pathlib import Path

    from mqkit.grading import Check, NotYet
    from mqkit.grading.grader import Submission, SubmissionResult, feedback_markdown
    from mqkit.grading.runner import RunReport

    def never(endpoints, **_):
        raise NotYet("nothing arrived")

    graded = Check("99.graded", "graded", ("the idea", "more concrete", "code()"), never)
    run = RunReport("completed", "", 3, 0)
    for level, shown, hidden in ((1, ["the idea"], ["more concrete", "code()"]),
                                 (3, ["the idea", "hint 2: more concrete", "hint 3: code()"],
                                  [])):
        result = graded.run(ENDPOINTS, hint_level=level)
        text = feedback_markdown(SubmissionResult(Submission("ann", Path("ann.ipynb")), "99",
                                                  [result], run))
        assert all(part in text for part in shown), text
        assert not any(part in text for part in hidden), text
