"""Watch the grading brokers: notice a death, start them again, count what it affected.

:class:`BrokerWatch` is asked before and after every submission's run
(:func:`mqkit.grading.grader.grade`). A broker that mqkit runs (process or docker backend)
is started again through its backend, with the same ports, users and data; a submission
whose run overlapped the death is graded again (:data:`MAX_REGRADES`), and each death is a
:class:`BrokerIncident` in the gradebook's summary. An external broker is only probed: its
death ends the run, since nothing here can start it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mqkit.endpoints import Endpoints
from mqkit.exceptions import BrokerConnectionError, BrokerNotRunning, MQKitError

if TYPE_CHECKING:
    from mqkit.brokers.base import Backend

log = logging.getLogger(__name__)

#: How many times one submission is graded again because a broker died during its run.
MAX_REGRADES = 2
#: How many times one grading run restarts its brokers before it gives up on them.
MAX_RESTARTS = 5
#: Probes of an external broker before it counts as dead, and the seconds between them.
PROBE_ATTEMPTS, PROBE_PAUSE = 3, 2.0

_TITLES = {"rabbitmq": "RabbitMQ", "mosquitto": "Mosquitto"}


class BrokerWatch:
    """Notices when the grading brokers die, starts them again, and counts the restarts.

    Every submission is graded between two :meth:`check` calls. Each restart (or a restart
    someone else made) starts a new *epoch*; a submission whose two checks saw different
    epochs overlapped a death and is graded again. A brokers' backend that mqkit runs
    (process, docker) tells whether each broker runs and revives a dead one with its data,
    ports and users; an external broker is only probed, and its death ends the run.

    Args:
        broker: the brokers' endpoints (an administrator's).
        backend: the backend that runs them, or ``None`` when mqkit does not (external).
        brokers: which brokers the submissions use (``rabbitmq``, and ``mosquitto`` when the
            submissions share the instructor's).
    """

    def __init__(self, broker: Endpoints, backend: Backend | None,
                 brokers: Sequence[str] = ("rabbitmq",)) -> None:
        self.broker, self.backend, self.brokers = broker, backend, tuple(brokers)
        self.epoch = 0
        self.incidents: list[BrokerIncident] = []
        self._lock = threading.Lock()
        self._last_good = time.time()
        self._seen: dict[str, str] = {}
        self._vhosts: set[str] = set()
        self._down()  # what runs now, to tell a later restart by someone else

    # -- the namespaces of this run -----------------------------------------------------

    def created(self, vhost: str) -> None:
        """A submission's vhost is being made."""
        with self._lock:
            self._vhosts.add(vhost)

    def removed(self, vhost: str) -> None:
        """A submission's vhost is gone."""
        with self._lock:
            self._vhosts.discard(vhost)

    def remove_leftovers(self) -> list[str]:
        """Remove the vhosts and users this run made and could not remove; return them.

        A broker killed mid-run keeps the vhosts it had (they are durable), while the
        grader's attempt to delete them failed. Called with the broker running again.
        """
        from mqkit.admin import Admin

        removed = []
        for vhost in sorted(self._vhosts):
            try:
                Admin(self.broker).delete_namespace(vhost, vhost, reason="grading finished")
            except MQKitError as exc:
                log.warning("could not remove grading namespace %s: %s", vhost, exc.message)
                continue
            self._vhosts.discard(vhost)
            removed.append(vhost)
        if removed:
            log.info("removed %d grading namespace(s) a dead broker had kept: %s",
                     len(removed), ", ".join(removed))
        return removed

    # -- health ----------------------------------------------------------------------------

    def check(self, after: str = "") -> int:
        """Make sure the brokers run, restarting them if one died; return the epoch.

        Args:
            after: the student whose run just ended ('' before a run), for the report.

        Raises:
            BrokerNotRunning: a broker died and cannot be started again (mqkit does not run
                it, its restart failed, or it died :data:`MAX_RESTARTS` times already).
        """
        with self._lock:
            down, restarted = self._down()
            if down:
                self._revive(down, after)
            elif restarted:
                log.warning("%s restarted during grading (not by the grader)",
                            " and ".join(restarted))
                self.epoch += 1
                self.incidents.append(BrokerIncident(tuple(restarted), self._last_good,
                                                     time.time(), after))
            self._last_good = time.time()
            return self.epoch

    def regrading(self, since: int, student: str) -> None:
        """Record that ``student``, graded from epoch ``since`` on, is graded again."""
        with self._lock:
            for incident in self.incidents[since:]:
                incident.regraded.append(student)

    def _down(self) -> tuple[list[str], list[str]]:
        """The brokers that are down, and those that run but were restarted since."""
        if self.backend is None:
            return self._probe(), []
        try:
            statuses = {s.broker: s for s in self.backend.status() if s.broker in self.brokers}
        except MQKitError as exc:
            log.warning("could not tell whether the brokers run: %s", exc.message)
            return [_TITLES[name] for name in self.brokers], []
        down = [_TITLES[name] for name in self.brokers
                if name not in statuses or not statuses[name].is_running]
        # A new pid or container state while running: restarted by someone else.
        restarted = [_TITLES[name] for name, status in statuses.items()
                     if status.is_running and self._seen.get(name, status.detail)
                     != status.detail]
        self._seen = {name: status.detail for name, status in statuses.items()}
        return down, restarted

    def _probe(self) -> list[str]:
        # Only a broker that stays silent counts as dead: a busy one may miss one probe, and
        # a false alarm here would end the grading run.
        for _ in range(PROBE_ATTEMPTS - 1):
            down = self._probe_once()
            if not down:
                return []
            log.info("%s did not answer a probe; asking again", " and ".join(down))
            time.sleep(PROBE_PAUSE)
        return self._probe_once()

    def _probe_once(self) -> list[str]:
        from mqkit.brokers.readiness import probe_amqp_url, probe_management, probe_mqtt

        down = []
        try:
            probe_amqp_url(self.broker.amqp_url, timeout=5.0)
            if self.broker.management is not None:
                probe_management(self.broker.management, timeout=5.0)
        except BrokerConnectionError:
            down.append("RabbitMQ")
        if "mosquitto" in self.brokers:
            try:
                probe_mqtt(self.broker.mqtt, timeout=5.0)
            except BrokerConnectionError:
                down.append("Mosquitto")
        return down

    def _revive(self, down: list[str], after: str) -> None:
        noticed = time.time()
        names = " and ".join(down)
        where = f"noticed after {after}'s run" if after else "noticed before a run"
        if self.backend is None:
            raise BrokerNotRunning(
                f"{names} stopped answering during grading ({where}); no backend of mqkit's "
                "runs it here, so the grader cannot start it again.",
                hint="Have the broker started again, then grade again; no gradebook was "
                     "written.")
        if len(self.incidents) >= MAX_RESTARTS:
            raise BrokerNotRunning(
                f"{names} died again during grading ({where}), after {MAX_RESTARTS} restarts "
                "in this run.",
                hint="Look at the broker's logs (`mqkit logs rabbitmq`); a submission graded "
                     "with --sandbox none may be killing it.")
        log.warning("%s died during grading (%s); starting it again", names, where)
        began = time.monotonic()
        try:
            self.backend.start()
        except MQKitError as exc:
            raise BrokerNotRunning(
                f"{names} died during grading ({where}) and could not be started again: "
                f"{exc.message}", hint=exc.hint or "See `mqkit logs rabbitmq`.") from exc
        self.epoch += 1
        self.incidents.append(BrokerIncident(tuple(down), self._last_good, noticed, after,
                                             time.monotonic() - began))
        self._down()  # the revived brokers' pids are the ones to compare with from now on
        self.remove_leftovers()


@dataclass
class BrokerIncident:
    """A grading broker found dead (or restarted by someone else) during a grading run.

    Attributes:
        brokers: the brokers' names (``RabbitMQ``, ``Mosquitto``).
        last_seen: when a check last found them running (seconds since the epoch).
        noticed: when the grader found them down.
        noticed_after: the student whose run had just ended then ('' before a run).
        restart_seconds: how long the grader's restart took (``None``: it was not the
            grader's restart, something else had started them again).
        regraded: the students graded again because their run overlapped it.
    """

    brokers: tuple[str, ...]
    last_seen: float
    noticed: float
    noticed_after: str = ""
    restart_seconds: float | None = None
    regraded: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One sentence for the summary."""
        names = " and ".join(self.brokers)
        when = f"between {_clock(self.last_seen)} and {_clock(self.noticed)} UTC"
        if self.noticed_after:
            when += f", noticed after {self.noticed_after}'s run"
        done = ("restarted by something else" if self.restart_seconds is None
                else f"restarted in {self.restart_seconds:.1f} s")
        again = ", ".join(sorted(set(self.regraded))) or "none"
        return f"{names} died during grading ({when}); {done}; re-graded: {again}"


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


def incident_names(incidents: Iterable[BrokerIncident]) -> str:
    """The brokers named by ``incidents``, once each (``Mosquitto and RabbitMQ``)."""
    return " and ".join(sorted({name for incident in incidents for name in incident.brokers}))


def backend_of(broker: Endpoints) -> Backend | None:
    """The backend that runs ``broker`` on this machine (to revive it), else ``None``."""
    from mqkit.brokers.launcher import MANAGED, get_backend
    from mqkit.config import Settings as MQKitSettings

    if broker.backend not in MANAGED:
        return None
    try:
        backend = get_backend(broker.backend, MQKitSettings.from_env(backend=broker.backend))
        running = backend.running() if backend.has_state() else None
    except MQKitError as exc:
        log.info("the %s backend cannot be asked about its brokers: %s", broker.backend,
                 exc.message)
        return None
    return backend if running is not None and running.amqp_url == broker.amqp_url else None
