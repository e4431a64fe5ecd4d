"""A classroom folder: every student's namespace, made, listed, removed and brought back.

:class:`Classroom` works on one folder (``DIR``) that holds its record (``classroom.json``),
the students' cards, the instructor's CSV, the systemd unit and, under ``mosquitto/``, each
student's Mosquitto. RabbitMQ is the classroom's shared broker, reached as an administrator
(:class:`~mqkit.classroom.broker.ClassBroker`); mqkit never starts or stops it here. The
Mosquittos are mqkit's own (the classroom backend): ``up`` starts those that do not run,
``down`` stops them, keeping their data.

Example:
    >>> classroom = Classroom("course")                                  # doctest: +SKIP
    >>> classroom.create(read_roster("ROSTER.csv"), ClassBroker.from_admin_url(url))
    CreateReport(added=['ann', 'bo'], ...)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mqkit.brokers.ports import connections_to
from mqkit.brokers.specs import LOOPBACK, new_password
from mqkit.classroom import namespace, progress
from mqkit.classroom.broker import ClassBroker
from mqkit.classroom.cards import (
    card_path,
    write_card,
    write_instructor_csv,
    write_systemd_unit,
)
from mqkit.classroom.limits import Limits
from mqkit.classroom.mosquitto import PortPool, StudentMosquitto, check_binary
from mqkit.classroom.record import ClassroomRecord, StudentRecord, load_record, save_record
from mqkit.classroom.roster import Student
from mqkit.config import Settings
from mqkit.exceptions import BrokerConnectionError, ConfigError, MQKitError

log = logging.getLogger(__name__)

#: Put before a student's id to name their vhost and user.
DEFAULT_PREFIX = "student-"
#: Students set up at once (each is a handful of management requests and a process start).
DEFAULT_WORKERS = 4

_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


@dataclass
class CreateReport:
    """What a ``create`` did.

    Attributes:
        added: students new in this run.
        kept: students that were there already and are left as they were.
        repaired: students whose vhost or user was missing on the broker and was made again
            (same password), or whose earlier ``create`` had not finished.
        restarted: students whose Mosquitto was not running and was started again.
        absent: students of the classroom that the roster no longer lists (kept).
        seconds: the run's wall time.
    """

    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class StudentStatus:
    """One row of ``list``.

    Attributes:
        id: the student's id.
        name: the student's name.
        user: their RabbitMQ and Mosquitto user (and vhost).
        is_ready: their namespace was made completely.
        mqtt_port: their Mosquitto's port.
        is_mosquitto_running: their Mosquitto runs.
        has_vhost: their vhost exists on the broker (``None``: the broker was not asked).
        connections: their open AMQP connections (``None``: the broker was not asked).
        mqtt_clients: the clients connected to their Mosquitto, counted from this machine's
            TCP connections to its port (``None``: unknown, not on Linux).
    """

    id: str
    name: str
    user: str
    is_ready: bool
    mqtt_port: int
    is_mosquitto_running: bool
    has_vhost: bool | None
    connections: int | None
    mqtt_clients: int | None = None

    @property
    def is_connected(self) -> bool | None:
        """True while the student holds an AMQP connection (``None``: unknown)."""
        return None if self.connections is None else self.connections > 0


@dataclass
class UpReport:
    """What ``up`` did: Mosquittos started, already running, and failed (id -> reason)."""

    started: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Classroom:
    """The classroom kept in ``folder``.

    Args:
        folder: the classroom folder (``--out DIR``).
        mosquitto_binary: the mosquitto executable (default: ``MQKIT_MOSQUITTO_BINARY``).
    """

    def __init__(self, folder: str | Path, *, mosquitto_binary: str | None = None) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self.mosquitto_binary = mosquitto_binary or Settings.from_env().mosquitto_binary

    def __repr__(self) -> str:
        return f"Classroom({str(self.folder)!r})"

    # -- reading -------------------------------------------------------------------------

    def record(self) -> ClassroomRecord:
        """The classroom's record.

        Raises:
            ConfigError: the folder holds no classroom.
        """
        record = load_record(self.folder)
        if record is None:
            raise ConfigError(f"{self.folder} holds no classroom (no classroom.json).",
                              hint="Create one with `mqkit classroom create ROSTER.csv --out "
                                   f"{self.folder}`.")
        return record

    def mosquitto(self, record: ClassroomRecord, student: StudentRecord) -> StudentMosquitto:
        """The student's Mosquitto (not started by this call)."""
        return StudentMosquitto(self.folder / "mosquitto" / student.id, student.user,
                                limits=record.limits, bind=record.mqtt_listen,
                                port=student.mqtt_port, binary=self.mosquitto_binary)

    def status(self, broker: ClassBroker | None) -> list[StudentStatus]:
        """Every student: Mosquitto running, vhost present, AMQP and MQTT connections open.

        Args:
            broker: the classroom's RabbitMQ; ``None`` (or a broker that does not answer, or
                a user who is no administrator) leaves the vhost and connection columns
                unknown.

        Raises:
            ConfigError: ``broker`` is not the one the classroom lives on.
        """
        record = self.record()
        vhosts: set[str] | None = None
        connections: dict[str, int] | None = None
        if broker is not None:
            _check_broker(record, broker)
            try:
                broker.check_administrator()  # a student's URL would see only their own
                vhosts = {v["name"] for v in broker.admin.vhosts()}
                connections = {}
                for connection in broker.admin.connections():
                    user = connection.get("user", "")
                    connections[user] = connections.get(user, 0) + 1
            except BrokerConnectionError as exc:  # authentication errors included
                log.warning("the classroom broker cannot be asked (vhosts and connections "
                            "are unknown): %s", exc.message)
                vhosts = connections = None
        # Each Mosquitto is a process of this machine: its clients are the TCP connections
        # to its port here (its $SYS counters are the student's to read, and lag 10 s).
        mqtt = connections_to({s.mqtt_port for s in record.students.values()})
        rows = []
        for student in sorted(record.students.values(), key=lambda s: s.id.lower()):
            running = self.mosquitto(record, student).is_running()
            rows.append(StudentStatus(
                student.id, student.name, student.user, student.ready, student.mqtt_port,
                running,
                None if vhosts is None else student.vhost in vhosts,
                None if connections is None else connections.get(student.user, 0),
                None if mqtt is None else mqtt[student.mqtt_port] if running else 0))
        return rows

    # -- changing ------------------------------------------------------------------------

    def create(self, students: Sequence[Student], broker: ClassBroker, *,
               public_host: str | None = None, prefix: str | None = None,
               limits: Limits | None = None, mqtt_listen: str | None = None,
               mqtt_ports: tuple[int, int] | None = None,
               cluster_nodes: Sequence[str] | None = None,
               workers: int = DEFAULT_WORKERS) -> CreateReport:
        """Make a namespace and a card for every student of the roster who has none yet.

        Students already in the classroom keep their passwords, ports and cards; one whose
        vhost or user has gone from the broker gets them back (same password), one whose
        Mosquitto does not run gets it started. Everything that can be checked is checked
        before anything is created: the broker's administrator rights, the mosquitto
        binary, names on the broker that belong to someone else.

        Args:
            students: the roster (:func:`~mqkit.classroom.roster.read_roster`).
            broker: the classroom's RabbitMQ, as an administrator.
            public_host: the host name in the cards (default: the broker's host). Changing
                it later rewrites every card.
            prefix: before each id in vhost and user names (default ``student-``).
            limits: the per-student limits (default :class:`Limits`).
            mqtt_listen: ``127.0.0.1`` or ``0.0.0.0`` for the Mosquittos (default: loopback
                when the public host is a loopback name, else every interface).
            mqtt_ports: an inclusive range for the Mosquittos' ports (default: any free).
            cluster_nodes: the other AMQP nodes of the broker's cluster (``host:port``, as
                students reach them), listed in the cards after the first so that every
                mqkit client fails over to them (default: the nodes of mqkit's own
                cluster, else none). Changing them later rewrites every card.
            workers: students set up at once.

        Prefix, limits, listen address and port range are fixed by the first ``create``;
        giving another value later is an error.

        Raises:
            ConfigError: a bad option, or names on the broker that are not this classroom's
                (nothing is created then).
            AuthenticationError: the management user is no administrator.
            BackendUnavailable: Mosquitto is not installed.
            MQKitError: some students could not be set up (the others are; the same
                ``create`` again finishes them).
        """
        started = time.monotonic()
        if workers < 1:
            raise ConfigError(f"workers={workers} must be at least 1.", hint="E.g. 4.")
        record = load_record(self.folder)
        if record is None:
            record = self._new_record(broker, public_host, prefix, limits, mqtt_listen,
                                      mqtt_ports)
        else:
            _check_broker(record, broker)
            _check_unchanged(record, prefix, limits, mqtt_listen, mqtt_ports)
            if public_host and public_host != record.public_host:
                log.info("public host %s -> %s: every card is written again",
                         record.public_host, public_host)
                record.public_host = public_host
        if cluster_nodes is not None and list(cluster_nodes) != record.failover:
            log.info("cluster nodes %s -> %s: every card is written again",
                     ",".join(record.failover) or "none", ",".join(cluster_nodes) or "none")
            record.failover = list(cluster_nodes)
        broker.check_administrator()
        check_binary(self.mosquitto_binary)
        report = CreateReport()
        existing_vhosts = {v["name"] for v in broker.admin.vhosts()}
        existing_users = {u["name"] for u in broker.admin.users()}
        new = [s for s in students if record.find(s.id) is None]
        taken = sorted({record.prefix + s.id for s in new} & (existing_vhosts | existing_users))
        if taken:
            raise ConfigError(
                f"These vhosts or users exist on {record.broker} but are no students of this "
                f"classroom: {_some(taken)}. Nothing was created.",
                hint="Another course or classroom folder uses these names: choose another "
                     "--prefix for this class, or delete them on the broker if they are "
                     "leftovers.")
        listed = {s.id.lower() for s in students}
        report.absent = sorted(s.id for s in record.students.values()
                               if s.id.lower() not in listed)

        for folder in (self.folder, self.folder / "mosquitto"):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        pool = PortPool({s.mqtt_port for s in record.students.values()}, record.mqtt_listen,
                        *(record.mqtt_ports or (None, None)))
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for student in new:
            record.students[student.id] = StudentRecord(
                student.id, student.name, record.prefix + student.id, new_password(),
                pool.take(), created=now)
        # Saved before the broker is touched: a run that stops half-way leaves records that
        # the next run finishes (every step is idempotent), never vhosts nobody knows of.
        save_record(self.folder, record)

        tasks: dict[str, Callable[[], tuple[int, str]]] = {}
        for student in students:
            kept = record.find(student.id)
            assert kept is not None
            kept.name = student.name
            is_new = student in new
            missing = (kept.vhost not in existing_vhosts or kept.user not in existing_users)
            if is_new or not kept.ready or missing:
                if not is_new:
                    report.repaired.append(kept.id)
                tasks[kept.id] = self._set_up_task(record, kept, broker)
            elif not self.mosquitto(record, kept).is_running():
                report.restarted.append(kept.id)
                tasks[kept.id] = self.mosquitto(record, kept).start
            else:
                report.kept.append(kept.id)
        report.added = [s.id for s in new]
        progress.provision_board(broker.admin, record)
        failures = self._run(tasks, record, workers)
        progress.grant_board(broker.admin, record,
                             [s for s in record.students.values() if s.ready])
        for student in record.students.values():
            if student.ready:
                write_card(self.folder, record, student)
        write_instructor_csv(self.folder, record)
        write_systemd_unit(self.folder)
        report.seconds = time.monotonic() - started
        if failures:
            raise _failed("set up", failures, len(tasks),
                          hint="The others are ready. Fix the cause and run the same create "
                               "again: it finishes only what is missing.")
        return report

    def remove(self, ids: Sequence[str], broker: ClassBroker) -> list[str]:
        """Delete everything of these students: connections, vhost, user, Mosquitto, card.

        Raises:
            ConfigError: an id that is not a student of this classroom (nothing removed).
            MQKitError: the broker refused or did not answer for some students (they stay
                in the classroom; the others are removed).
        """
        record = self.record()
        found: dict[str, StudentRecord] = {}
        unknown = []
        for student_id in ids:
            student = record.find(student_id)
            if student is None:
                unknown.append(student_id)
            else:
                found[student.id] = student
        if unknown:
            raise ConfigError(f"Not students of this classroom: {', '.join(unknown)}. Nothing "
                              "was removed.",
                              hint=f"`mqkit classroom list {self.folder}` shows the ids.")
        _check_broker(record, broker)
        failures: dict[str, MQKitError] = {}
        removed = []
        for student in found.values():
            try:
                namespace.remove(broker.admin, student.vhost, student.user)
            except MQKitError as exc:
                failures[student.id] = exc
                continue
            self.mosquitto(record, student).remove()
            card_path(self.folder, student).unlink(missing_ok=True)
            del record.students[student.id]
            save_record(self.folder, record)
            removed.append(student.id)
            log.info("removed %s (%s)", student.id, student.name)
        write_instructor_csv(self.folder, record)
        if not record.students and not failures:
            # The last student gone: the board's vhost (and its verdicts) go too.
            broker.admin.delete_vhost(record.progress_vhost)
            (self.folder / progress.STATE_FILE).unlink(missing_ok=True)
        if failures:
            raise _failed("removed", failures, len(found),
                          hint="They stay in the classroom; run the same remove again.")
        return removed

    def up(self, workers: int = DEFAULT_WORKERS) -> UpReport:
        """Start every ready student's Mosquitto that does not run (after a reboot)."""
        record = self.record()
        report = UpReport()
        tasks = {}
        for student in record.students.values():
            if not student.ready:
                continue
            mosquitto = self.mosquitto(record, student)
            if mosquitto.is_running():
                report.running.append(student.id)
            else:
                tasks[student.id] = mosquitto.start
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(task): student_id for student_id, task in tasks.items()}
            for future in as_completed(futures):
                student_id = futures[future]
                try:
                    future.result()
                    report.started.append(student_id)
                except MQKitError as exc:
                    report.failed[student_id] = str(exc)
        report.started.sort()
        return report

    def down(self) -> list[str]:
        """Stop every student's Mosquitto, keeping data, ports and passwords; return whose."""
        record = self.record()
        return [s.id for s in record.students.values() if self.mosquitto(record, s).stop()]

    # -- internals -----------------------------------------------------------------------

    def _new_record(self, broker: ClassBroker, public_host: str | None, prefix: str | None,
                    limits: Limits | None, mqtt_listen: str | None,
                    mqtt_ports: tuple[int, int] | None) -> ClassroomRecord:
        prefix = DEFAULT_PREFIX if prefix is None else prefix
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"The prefix {prefix!r} cannot start a vhost and user name.",
                              hint="Use letters, digits, '.', '_' and '-' (at most 32), e.g. "
                                   "'mq2026-'.")
        if mqtt_ports is not None and not 1024 <= mqtt_ports[0] <= mqtt_ports[1] <= 65535:
            raise ConfigError(f"The MQTT port range {mqtt_ports[0]}-{mqtt_ports[1]} is not a "
                              "range of unprivileged ports.", hint="E.g. --mqtt-ports "
                                                                   "21000-21199.")
        host = public_host or broker.management.host
        listen = mqtt_listen or (LOOPBACK if _is_loopback(host) else "0.0.0.0")
        return ClassroomRecord(broker=broker.key, public_host=host, amqp_port=broker.amqp_port,
                               management_scheme=broker.management.scheme,
                               management_port=broker.management.port, prefix=prefix,
                               mqtt_listen=listen, mqtt_ports=mqtt_ports,
                               limits=limits or Limits(), failover=list(broker.failover))

    def _set_up_task(self, record: ClassroomRecord, student: StudentRecord,
                     broker: ClassBroker) -> Callable[[], tuple[int, str]]:
        def task() -> tuple[int, str]:
            namespace.provision(broker.admin, student.vhost, student.user, student.password,
                                record.limits, description=f"mqkit classroom "
                                f"{self.folder.name}: {student.name} ({student.id})")
            return self.mosquitto(record, student).start()

        return task

    def _run(self, tasks: dict[str, Callable[[], tuple[int, str]]], record: ClassroomRecord,
             workers: int) -> dict[str, MQKitError]:
        """Run the students' tasks; save each one's Mosquitto port and password as it ends."""
        failures: dict[str, MQKitError] = {}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(task): student_id for student_id, task in tasks.items()}
            for done, future in enumerate(as_completed(futures), start=1):
                student = record.students[futures[future]]
                try:
                    student.mqtt_port, student.mqtt_password = future.result()
                except MQKitError as exc:
                    failures[student.id] = exc
                    log.warning("%s could not be set up: %s", student.id, exc.message)
                    continue
                student.ready = True
                save_record(self.folder, record)
                log.info("%s ready (%d/%d)", student.id, done, len(tasks))
        return failures


def _check_broker(record: ClassroomRecord, broker: ClassBroker) -> None:
    if broker.key != record.broker:
        raise ConfigError(f"This classroom lives on the broker {record.broker}, not on "
                          f"{broker.key}.",
                          hint=f"Pass --admin-url (or MQKIT_MANAGEMENT_URL) with an "
                               f"administrator of {record.broker}.")


def _check_unchanged(record: ClassroomRecord, prefix: str | None, limits: Limits | None,
                     mqtt_listen: str | None, mqtt_ports: tuple[int, int] | None) -> None:
    given = {"--prefix": (prefix, record.prefix), "limits": (limits, record.limits),
             "--mqtt-listen": (mqtt_listen, record.mqtt_listen),
             "--mqtt-ports": (mqtt_ports, record.mqtt_ports)}
    changed = [f"{name} {new!r} (the classroom has {old!r})"
               for name, (new, old) in given.items() if new is not None and new != old]
    if changed:
        raise ConfigError(f"This classroom was created with other settings: "
                          f"{'; '.join(changed)}.",
                          hint="Leave these options out when adding students; a classroom "
                               "with other settings needs another folder.")


def _failed(what: str, failures: dict[str, MQKitError], total: int, hint: str) -> MQKitError:
    lines = "\n".join(f"  {student_id}: {exc.message}" for student_id, exc in
                      sorted(failures.items()))
    return MQKitError(f"{len(failures)} of {total} students could not be {what}:\n{lines}",
                      hint=hint)


def _some(names: Sequence[str], shown: int = 10) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
