"""Grade a class's notebooks: each in isolation, scored from broker state, into a gradebook.

For each submission :func:`grade` creates a :class:`~mqkit.grading.namespace.Namespace` (a
fresh vhost with its own non-administrator user, and its own Mosquitto), runs the notebook
headless in a separate kernel pointed at it (:func:`~mqkit.grading.runner.run_notebook`),
then runs the lab's checks and the instructor's extra checks *itself* against that vhost —
what the notebook printed is never trusted — and finally removes the namespace. The checks are
settled once per run, before any notebook runs: the extra-checks file is executed once, and
every submission gets the same check objects. It writes
one CSV row per submission and check plus a total row per student, and a Markdown feedback
file per student. Rows are sorted and carry no timestamps, so grading the same files again
gives the same bytes.

The brokers are checked before and after every submission
(:class:`~mqkit.grading.broker_watch.BrokerWatch`). When one died meanwhile, the grader starts
it again through the backend that runs it, and grades again every submission whose run
overlapped the death (at most :data:`~mqkit.grading.broker_watch.MAX_REGRADES` times each);
the gradebook's summary and the affected rows say so.

Example:
    >>> from mqkit.grading.grader import grade                     # doctest: +SKIP
    >>> gradebook = grade("02", sorted(Path("inbox").glob("*.ipynb")),
    ...                   out="grades.csv", feedback_dir="feedback", workers=2)
"""

from __future__ import annotations

import concurrent.futures
import csv
import importlib.util
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mqkit.endpoints import Endpoints
from mqkit.exceptions import BrokerNotRunning, ConfigError, MQKitError
from mqkit.grading.broker_watch import (
    MAX_REGRADES,
    BrokerIncident,
    BrokerWatch,
    backend_of,
    incident_names,
)
from mqkit.grading.registry import (
    GRADER_RUNS_CHECKS,
    Check,
    CheckResult,
    Status,
    all_checks,
    checks_for_lab,
    collecting,
)
from mqkit.grading.runner import RunReport, run_notebook
from mqkit.grading.sandbox import NoSandbox, Sandbox, choose_sandbox

if TYPE_CHECKING:
    from mqkit.brokers.base import Backend

log = logging.getLogger(__name__)

#: The gradebook's columns.
COLUMNS = ("student", "lab", "check", "points", "max_points", "status", "message", "sandbox")

#: Labs whose notebooks use MQTT get their own Mosquitto; the others share the instructor's
#: (they never publish to it; the notebook's start_brokers() only probes it).

_TOTAL = "TOTAL"


@dataclass(frozen=True)
class Submission:
    """One student's notebook."""

    student: str
    path: Path


@dataclass
class SubmissionResult:
    """The outcome of grading one submission.

    Attributes:
        submission: whose notebook.
        lab: the lab number.
        results: one result per check, sorted by check id.
        run: what happened while the notebook ran.
        hidden: ids of checks the student does not see in advance.
        vhost: the vhost the submission ran in (not written to the gradebook).
        sandbox: the sandbox its kernel ran in (``docker``, ``user``, ``none``).
        leftovers: its processes still running after the run, which the sandbox killed.
        regraded: why it was graded again ('' when it was graded once): a broker died
            during an earlier run.
    """

    submission: Submission
    lab: str
    results: list[CheckResult]
    run: RunReport
    hidden: frozenset[str] = frozenset()
    vhost: str = ""
    sandbox: str = "none"
    leftovers: int = 0
    regraded: str = ""

    @property
    def points(self) -> int:
        """Points awarded."""
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> int:
        """Points possible."""
        return sum(r.max_points for r in self.results)


@dataclass
class Gradebook:
    """Every submission's result, sorted by student, and the brokers' deaths meanwhile."""

    lab: str
    submissions: list[SubmissionResult] = field(default_factory=list)
    incidents: list[BrokerIncident] = field(default_factory=list)

    def rows(self) -> list[dict[str, str]]:
        """The CSV rows: each check of each student, then the student's total."""
        rows = []
        for item in self.submissions:
            student = item.submission.student
            for result in item.results:
                rows.append({"student": student, "lab": self.lab, "check": result.check_id,
                             "points": str(result.points),
                             "max_points": str(result.max_points),
                             "status": result.status.value, "message": result.message,
                             "sandbox": item.sandbox})
            reason = item.run.reason
            if item.leftovers:
                left = (f"{item.leftovers} process(es) it started were still running after "
                        "the run and were killed")
                reason = f"{reason}; {left}" if reason else left
            if item.regraded:
                reason = f"{reason}; {item.regraded}" if reason else item.regraded
            rows.append({"student": student, "lab": self.lab, "check": _TOTAL,
                         "points": str(item.points), "max_points": str(item.max_points),
                         "status": item.run.outcome, "message": reason,
                         "sandbox": item.sandbox})
        return rows

    def to_csv(self) -> str:
        """The gradebook as CSV text, one line per row."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return buffer.getvalue()

    def totals(self) -> dict[str, tuple[int, int]]:
        """``{student: (points, max_points)}``."""
        return {s.submission.student: (s.points, s.max_points) for s in self.submissions}


# -- who handed in what -------------------------------------------------------------------


def student_of(path: Path, lab: str | None = None) -> str:
    """The student a notebook belongs to.

    The notebook's metadata ``mqkit.student`` wins; otherwise the file name. Either way the
    name is lower-cased (``Alice.ipynb`` and ``alice.ipynb`` are one student) and a trailing
    lab number is dropped, the same way for every lab: a ``-``, ``_``, ``.`` or space, an
    optional ``lab``, then the number with or without its leading zero (``alice-02``,
    ``alice_2``, ``Alice Lab02`` are all ``alice`` in lab 02; without a lab, any two digits).
    """
    try:
        metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        named = str((metadata.get("mqkit") or {}).get("student") or "").strip()
    except (OSError, ValueError, AttributeError):
        named = ""
    if named:
        return _clean_name(named)
    stem = path.name.removesuffix(".ipynb")
    number = rf"0?{int(lab)}" if lab and lab.isdigit() else r"\d\d"
    stripped = re.sub(rf"[-_. ](lab)?{number}$", "", stem, flags=re.IGNORECASE)
    return _clean_name(stripped or stem)


def _clean_name(text: str) -> str:
    return re.sub(r"[^\w.@-]+", "_", text).strip("_")[:64].lower() or "unknown"


def collect(lab: str, paths: Iterable[str | Path]) -> list[Submission]:
    """The submissions, sorted by student.

    Raises:
        ConfigError: a file is missing or not a ``.ipynb``, or two files name one student.
    """
    submissions: dict[str, Submission] = {}
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise ConfigError(f"No submission file {str(path)!r}.",
                              hint="Pass the paths of the collected .ipynb files.")
        if path.suffix != ".ipynb":
            raise ConfigError(f"{str(path)!r} is not a notebook (.ipynb).",
                              hint="Pass the collected .ipynb files only.")
        student = student_of(path, lab)
        if student in submissions:
            raise ConfigError(
                f"Two submissions for student {student!r}: {submissions[student].path} "
                f"and {path}.", hint="Keep one notebook per student, or set distinct "
                                     "metadata mqkit.student.")
        submissions[student] = Submission(student, path.resolve())
    return [submissions[name] for name in sorted(submissions)]


# -- which checks ---------------------------------------------------------------------

_TRACEBACK_HINT = "Run it with python to see the traceback."


def load_extra_checks(path: str | Path, lab: str | None = None) -> list[Check]:
    """The checks an instructor's Python file defines (those of ``lab`` only, when given).

    The file is executed once per call, inside :func:`~mqkit.grading.registry.collecting`:
    functions it decorates with :func:`~mqkit.grading.check` (or checks it passes to
    ``register``) are collected there, and :class:`~mqkit.grading.Check` objects it defines at
    module level (or in a ``CHECKS`` list) are picked up too. None of them reaches the global
    registry, so they stay hidden from students.

    Returns:
        The checks, sorted by id.

    Raises:
        ConfigError: the file is missing, fails to import, or defines a check id twice.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"No checks file {str(file)!r}.",
                          hint="Pass --checks the path of a Python file defining checks.")
    name = f"mqkit_extra_checks_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        with collecting() as registered:
            spec.loader.exec_module(module)
    except MQKitError as exc:  # e.g. a malformed check id: its own hint says what to do
        raise ConfigError(f"The checks file {str(file)!r} failed to import: "
                          f"{type(exc).__name__}: {exc.message.rstrip('.')}.",
                          hint=exc.hint or _TRACEBACK_HINT) from exc
    except Exception as exc:
        raise ConfigError(f"The checks file {str(file)!r} failed to import: "
                          f"{type(exc).__name__}: {exc}.", hint=_TRACEBACK_HINT) from exc
    found = list(registered.values())
    found += [value for value in vars(module).values() if isinstance(value, Check)]
    found += [value for value in getattr(module, "CHECKS", []) if isinstance(value, Check)]
    unique: dict[str, Check] = {}
    for check in found:
        if check.id in unique and unique[check.id] is not check:
            raise ConfigError(f"The checks file {str(file)!r} defines {check.id!r} twice.",
                              hint="Give every check its own id.")
        unique[check.id] = check
    return [unique[key] for key in sorted(unique) if lab is None or unique[key].lab == lab]


def lab_checks(
    lab: str, extra: str | Path | Iterable[Check] | None = None
) -> tuple[list[Check], frozenset[str]]:
    """The checks to run for ``lab`` (sorted by id) and the ids of the hidden ones.

    Args:
        lab: the lab number (``"02"``).
        extra: an extra-checks file (executed here, see :func:`load_extra_checks`), or checks
            already loaded from one; the checks of other labs are left out.

    Raises:
        ConfigError: no check exists for ``lab``, an extra check repeats a built-in id, or
            the file cannot be loaded.
    """
    checks = {c.id: c for c in checks_for_lab(lab)}
    hidden = {c.id for c in checks.values() if not c.visible}
    if isinstance(extra, str | os.PathLike):
        extra = load_extra_checks(extra)
    for check in extra or ():
        if check.lab != lab:
            continue
        if check.id in checks:
            raise ConfigError(f"The extra check {check.id!r} has the id of a built-in "
                              "check.", hint="Rename it, e.g. with a .hidden suffix.")
        checks[check.id] = check
        hidden.add(check.id)
    if not checks:
        known = sorted({c.lab for c in all_checks()})
        raise ConfigError(f"No checks for lab {lab!r}.",
                          hint=f"Labs with checks: {', '.join(known)}; or pass --checks.")
    return [checks[key] for key in sorted(checks)], frozenset(hidden)


# -- grading one submission ----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How to grade: the same for every submission of a batch.

    Attributes:
        lab: the lab number.
        broker: the instructor's brokers, where each submission's namespace is made.
        cell_timeout: seconds one cell may run.
        total_timeout: seconds a notebook may run.
        checks: the checks to run, sorted by id (built-in and extra, resolved once).
        hidden: ids of the checks students do not see in advance.
        with_mqtt: give each submission its own Mosquitto.
        mosquitto_binary: the mosquitto binary for those.
        hint_level: how many hint levels the feedback gives (1: the concept only).
    """

    lab: str
    broker: Endpoints
    cell_timeout: float
    total_timeout: float
    checks: tuple[Check, ...]
    hidden: frozenset[str]
    with_mqtt: bool
    mosquitto_binary: str
    hint_level: int = 1
    sandbox: Sandbox = field(default_factory=NoSandbox)


def kernel_environment(namespace_env: dict[str, str], home: Path) -> dict[str, str]:
    """The kernel's environment: the grader's without any ``MQKIT_*``, plus the namespace's.

    ``HOME`` and the state directories point into a scratch folder, so the notebook's
    ``mqkit`` finds no broker state of the grader's.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MQKIT_", "JPY_", "JUPYTER_"))}
    env.update(namespace_env)
    env[GRADER_RUNS_CHECKS] = "1"  # the notebook's self_check cells leave the verdict to us
    env.update({"HOME": str(home), "XDG_STATE_HOME": str(home / ".state"),
                "MQKIT_STATE_DIR": str(home / ".state" / "mqkit"),
                "PYTHONUNBUFFERED": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    # The kernel imports mqkit from the same installation as the grader.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return env


#: A self-check cell names its check: ``self_check("03.all-acked", endpoints)``.
SELF_CHECK_CALL = re.compile(r"""self_check\(\s*["']([^"']+)["']""")


class _CheckAfterCell:
    """Runs each check right after the cell that self-checks it, while the kernel still runs.

    A check may need what the notebook keeps running (an RPC server, a worker it stops on
    purpose to prove nothing is lost): after the last cell the kernel is gone. A check whose
    cell the submission removed or never reached, and the hidden checks, run after the run.
    Only the check id is taken from the submission's cell; what runs is the grader's check.
    """

    def __init__(self, settings: Settings, endpoints: Endpoints) -> None:
        self.settings, self.endpoints = settings, endpoints
        self.results: dict[str, CheckResult] = {}

    def __call__(self, source: str) -> None:
        for check_id in SELF_CHECK_CALL.findall(source):
            check = next((c for c in self.settings.checks if c.id == check_id), None)
            if check is not None and check_id not in self.results:
                self.results[check_id] = self._run(check)

    def _run(self, check: Check) -> CheckResult:
        return check.run(self.endpoints, hint_level=self.settings.hint_level)

    def finish(self) -> list[CheckResult]:
        """Every check's result in the settings' order; runs those not run yet."""
        return [self.results.get(c.id) or self._run(c) for c in self.settings.checks]


def grade_one(submission: Submission, settings: Settings, *,
              watch: BrokerWatch | None = None) -> SubmissionResult:
    """Grade one submission in a namespace of its own; never raises for the notebook's sake.

    Args:
        submission: whose notebook.
        settings: how to grade.
        watch: told which vhosts this run makes and removes, so it can remove the ones a
            dead broker kept once it runs again.
    """
    from mqkit.grading.namespace import Namespace

    space = Namespace.create(settings.broker, submission.student,
                             with_mqtt=settings.with_mqtt,
                             mosquitto_binary=settings.mosquitto_binary,
                             on_created=watch.created if watch is not None else None)
    try:
        ports = [space.endpoints.amqp.port, space.endpoints.mqtt.port]
        if space.endpoints.management is not None:
            ports.append(space.endpoints.management.port)
        with settings.sandbox.session(submission.student, ports,
                                      notebook=submission.path) as confinement, \
                tempfile.TemporaryDirectory(prefix="mqkit-grade-") as scratch:
            home = confinement.workdir or Path(scratch)
            checker = _CheckAfterCell(settings, space.endpoints)
            run = run_notebook(submission.path, kernel_environment(space.environment(), home),
                               cell_timeout=settings.cell_timeout,
                               total_timeout=settings.total_timeout, workdir=home,
                               after_cell=checker, confinement=confinement)
            results = checker.finish()
    finally:
        space.close()
        if watch is not None and space.is_removed:
            watch.removed(space.vhost)
    log.info("graded %s: %s", submission.student,
             ", ".join(f"{r.check_id}={r.points}/{r.max_points}" for r in results))
    return SubmissionResult(submission, settings.lab, results, run, settings.hidden,
                            space.vhost, settings.sandbox.name, confinement.leftovers)


def _failed_to_grade(submission: Submission, settings: Settings,
                     exc: BaseException | str) -> SubmissionResult:
    """A result for a submission the grader itself could not grade (broker trouble)."""
    if isinstance(exc, str):
        text = exc
    else:
        first = str(exc).splitlines()[0] if str(exc) else ""
        text = f"grading failed: {type(exc).__name__}: {first}"
    results = [CheckResult(c.id, Status.ERROR, "not checked: the grader failed", "", 0, c.points)
               for c in settings.checks]
    return SubmissionResult(submission, settings.lab, results,
                            RunReport("not-run", text, 0, 0), settings.hidden,
                            sandbox=settings.sandbox.name)


def _grade_safely(submission: Submission, settings: Settings,
                  watch: BrokerWatch | None = None) -> SubmissionResult:
    try:
        return grade_one(submission, settings, watch=watch)
    except Exception as exc:
        log.error("could not grade %s: %r", submission.student, exc)
        return _failed_to_grade(submission, settings, exc)


# -- brokers that die during a run -----------------------------------------------------------


def _grade_watched(submission: Submission, settings: Settings,
                   watch: BrokerWatch) -> SubmissionResult:
    """Grade a submission, again when a broker died during its run (bounded)."""
    student = submission.student
    for attempt in range(1 + MAX_REGRADES):
        epoch = watch.check()
        result = _grade_safely(submission, settings, watch)
        now = watch.check(after=student)
        if now == epoch:
            if attempt:
                names = incident_names(i for i in watch.incidents if student in i.regraded)
                runs = "its first run" if attempt == 1 else f"each of its first {attempt} runs"
                result.regraded = f"graded again: {names} died during {runs} and was restarted"
            return result
        if attempt < MAX_REGRADES:
            watch.regrading(epoch, student)
            log.warning("grading %s again: a broker died during its run", student)
    names = incident_names(watch.incidents[epoch:now])
    log.error("not grading %s again: a broker died during each of its %d runs", student,
              1 + MAX_REGRADES)
    return _failed_to_grade(submission, settings,
                            f"not graded: {names} died during each of its "
                            f"{1 + MAX_REGRADES} runs")


# -- the batch -------------------------------------------------------------------------------


def normalize_lab(lab: str) -> str:
    """``"2"``, ``"02"`` or ``"02-queues-durability"`` → ``"02"``.

    Raises:
        ConfigError: not a lab number.
    """
    match = re.fullmatch(r"(\d{1,2})(-.*)?", str(lab).strip())
    if not match:
        raise ConfigError(f"Unknown lab {lab!r}.", hint="Name the lab by its number, e.g. 02.")
    return f"{int(match.group(1)):02d}"


def grade(
    lab: str,
    submissions: Sequence[str | Path],
    *,
    out: str | Path | None = None,
    feedback_dir: str | Path | None = None,
    workers: int = 1,
    timeout: float = 60.0,
    total_timeout: float | None = None,
    extra_checks: str | Path | Iterable[Check] | None = None,
    broker: Endpoints | Backend | None = None,
    isolate_mqtt: bool | None = None,
    hint_level: int = 1,
    sandbox: str | Sandbox = "auto",
) -> Gradebook:
    """Grade every submission of ``lab``; write the gradebook CSV and feedback files.

    Args:
        lab: the lab number (``"02"``).
        submissions: paths of the students' ``.ipynb`` files.
        out: where to write the CSV (``None``: write nothing).
        feedback_dir: where to write ``<student>.md`` feedback (``None``: none).
        workers: submissions graded at the same time (each thread drives its own kernel
            process in its own namespace).
        timeout: seconds one cell may run.
        total_timeout: seconds a notebook may run (default: ``5 × timeout``).
        extra_checks: a Python file with the instructor's hidden checks (executed once,
            here), or the checks :func:`load_extra_checks` already loaded from one.
        broker: the instructor's brokers (default: :func:`mqkit.start_brokers`), or the
            backend that runs them (started here). When mqkit runs them (a backend given,
            or endpoints of the process or docker brokers of this machine), a broker that
            dies during the run is started again and the submissions it affected are
            graded again; an external broker's death ends the run.
        isolate_mqtt: give each submission its own Mosquitto (the default, for every lab:
            ``False`` hands the notebook your Mosquitto's URL with its credentials, so only
            for notebooks you trust).
        hint_level: how many hint levels each "not yet" carries into the feedback; the
            first (what is missing, in terms of the concept) by default.
        sandbox: where the kernels run (:mod:`mqkit.grading.sandbox`): ``auto`` (``docker``,
            else ``user``, else an error), ``docker`` (a container per submission),
            ``user``, or ``none`` (as you: only on purpose); or a
            :class:`~mqkit.grading.sandbox.Sandbox` object.

    Returns:
        The :class:`Gradebook`, sorted by student.

    Raises:
        ConfigError: unknown lab, missing files, duplicate students, a bad checks file.
        SandboxUnavailable: the sandbox asked for cannot run here.
        BrokerNotRunning: a broker died during the run and could not be started again.
    """
    from mqkit.brokers.base import Backend

    lab = normalize_lab(lab)
    # Before any broker work: an unknown lab or a bad checks file fails early.
    checks, hidden = lab_checks(lab, extra_checks)
    items = collect(lab, submissions)
    backend: Backend | None
    if isinstance(broker, Backend):
        backend, broker = broker, broker.start()
        if not backend.manages_brokers:
            backend = None
    else:
        if broker is None:
            from mqkit.brokers.launcher import start_brokers

            broker = start_brokers()
        backend = backend_of(broker)
    if not broker.management_url:
        raise ConfigError("Grading needs the RabbitMQ management API (to create vhosts).",
                          hint="Use brokers mqkit starts, or set MQKIT_MANAGEMENT_URL to an "
                               "administrator's management URL.")
    from mqkit.config import Settings as MQKitSettings

    with_mqtt = True if isolate_mqtt is None else isolate_mqtt
    confiner = (sandbox if isinstance(sandbox, Sandbox)
                else choose_sandbox(sandbox, slots=max(1, workers)))
    settings = Settings(lab, broker, float(timeout), float(total_timeout or 5 * timeout),
                        tuple(checks), hidden, with_mqtt,
                        MQKitSettings.from_env().mosquitto_binary, max(1, int(hint_level)),
                        confiner)
    watch = BrokerWatch(broker, backend, ("rabbitmq",) if with_mqtt else
                        ("rabbitmq", "mosquitto"))
    try:
        if workers <= 1 or len(items) <= 1:
            results = [_grade_watched(item, settings, watch) for item in items]
        else:
            results = _grade_parallel(items, settings, workers, watch)
    finally:
        if not isinstance(sandbox, Sandbox):
            confiner.close()
        watch.remove_leftovers()
    gradebook = Gradebook(lab, sorted(results, key=lambda r: r.submission.student),
                          watch.incidents)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(gradebook.to_csv(), encoding="utf-8")
    if feedback_dir is not None:
        write_feedback(gradebook, feedback_dir)
    return gradebook


def _grade_parallel(items: list[Submission], settings: Settings, workers: int,
                    watch: BrokerWatch) -> list[SubmissionResult]:
    # Threads suffice: the work happens in the kernel processes and the brokers; each thread
    # drives its own kernel (nbclient runs an event loop per thread) in its own namespace.
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                               thread_name_prefix="mqkit-grade") as pool:
        futures = {pool.submit(_grade_watched, item, settings, watch): item for item in items}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    results.append(future.result())
                except BrokerNotRunning:
                    raise  # the brokers are gone for good: grading the rest is pointless
                except Exception as exc:  # a worker process that died
                    results.append(_failed_to_grade(futures[future], settings, exc))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


# -- feedback --------------------------------------------------------------------------------


_MARK = {Status.PASSED: "passed", Status.FAILED: "not yet", Status.ERROR: "could not check",
         Status.DEFERRED: "not run"}


def feedback_markdown(item: SubmissionResult) -> str:
    """One student's feedback: total, how the notebook ran, and each check with its hint."""
    lines = [f"# Lab {item.lab} — feedback for {item.submission.student}", "",
             f"**Score: {item.points} / {item.max_points}**", ""]
    if item.regraded:
        lines += ["The grader's broker stopped while your notebook ran; it was started again "
                  "and your notebook graded again from the start. This is that last run.", ""]
    run = item.run
    if run.outcome == "completed":
        lines.append(f"Your notebook ran to the end ({run.code_cells} code cells).")
    else:
        lines.append(f"Your notebook did not run cleanly: {run.reason}.")
        if run.outcome in ("timed-out", "kernel-died"):
            lines.append("The checks looked at what your code had done up to that point.")
    if run.output_dropped:
        lines.append(f"It printed {run.output_bytes} bytes; only the first "
                     f"{run.output_bytes - run.output_dropped} were kept.")
    lines += ["", "The grader checked the broker itself; what the notebook printed was not "
              "used for the score.", "", "| check | points | result |", "|---|---|---|"]
    for result in item.results:
        name = result.check_id + (" (hidden)" if result.check_id in item.hidden else "")
        message = result.message.replace("|", "\\|")
        lines.append(f"| {name} | {result.points}/{result.max_points} | "
                     f"{_MARK[result.status]}: {message} |")
    hints = [r for r in item.results if r.status is Status.FAILED and r.hint]
    if hints:
        lines += ["", "## Next steps", ""]
        for result in hints:
            levels = result.hints or (result.hint,)
            lines.append(f"- **{result.check_id}**: {levels[0]}")
            lines += [f"  - hint {level}: {text}"
                      for level, text in enumerate(levels[1:], start=2)]
    return "\n".join(lines) + "\n"


def write_feedback(gradebook: Gradebook, folder: str | Path) -> list[Path]:
    """Write ``<student>.md`` for every submission into ``folder``; return the paths."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for item in gradebook.submissions:
        path = target / f"{item.submission.student}.md"
        path.write_text(feedback_markdown(item), encoding="utf-8")
        written.append(path)
    return written


def summary_lines(gradebook: Gradebook) -> list[str]:
    """Lines for the command line: each student's total and how the notebook ran.

    Then one line per broker death during the run: when, the restart, who was graded again.
    """
    lines = []
    for item in gradebook.submissions:
        reasons = "; ".join(filter(None, (item.run.reason, item.regraded)))
        note = f"  ({reasons})" if reasons else ""
        lines.append(f"{item.submission.student:<20} {item.points:>3}/{item.max_points:<3} "
                     f"{item.run.outcome}{note}")
    return lines + [incident.line() for incident in gradebook.incidents]
