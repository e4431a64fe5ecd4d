"""A submission's own broker namespace: a RabbitMQ vhost and user, and its own Mosquitto.

The grader gives every submission a fresh vhost on the instructor's RabbitMQ with a
non-administrator user that has permissions on that vhost only (RabbitMQ refuses it
everywhere else, AMQP and management API alike) and the ``management`` tag, so the notebook
and the checks can read its own queues through the management API. MQTT has no vhosts, so
each submission gets its own Mosquitto process on a free loopback port (it starts in well
under a second). :meth:`Namespace.close` removes the vhost, the user and the process.

Example:
    >>> with Namespace.create(mqkit.start_brokers(), "alice") as space:  # doctest: +SKIP
    ...     space.endpoints.amqp_url   # amqp://grade-alice-…:…@127.0.0.1:PORT/grade-alice-…
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mqkit.admin import Admin
from mqkit.brokers.process import ProcessBackend
from mqkit.brokers.specs import MOSQUITTO, new_password
from mqkit.classroom.limits import Limits
from mqkit.classroom.namespace import provision
from mqkit.config import Settings
from mqkit.endpoints import Endpoints
from mqkit.urls import amqp_url, http_url

log = logging.getLogger(__name__)

#: What one submission may hold on the shared RabbitMQ: a vhost limit on connections and
#: queues, and an operator policy (which the submission cannot lift) capping every queue.
#: 50 queues x 4 MiB is 200 MiB per submission at most, so a few submissions graded at once
#: stay far below RabbitMQ's memory watermark (40 % of RAM by default): one that floods the
#: broker fills its own caps (the oldest messages are dropped) and never raises the
#: node-wide memory alarm that would block every other submission.
GRADING_LIMITS = Limits(max_connections=64, max_queues=50, max_length=10_000,
                        max_length_bytes=4 * 1024 * 1024)

#: Seconds a submission's Mosquitto gets to answer an authenticated CONNECT.
MOSQUITTO_START_TIMEOUT = 10.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "student"


@dataclass
class SubmissionMosquitto:
    """A submission's own Mosquitto, run by the process backend in a temporary folder.

    It is launched, waited for and stopped by the same code as every broker mqkit runs
    (:class:`~mqkit.brokers.process.ProcessBackend` with only the Mosquitto spec).

    Attributes:
        url: ``mqtt://user:pass@127.0.0.1:PORT`` with the submission's user.
    """

    backend: ProcessBackend = field(repr=False)
    folder: Path
    url: str

    @classmethod
    def start(cls, username: str, binary: str = "mosquitto") -> SubmissionMosquitto:
        """Start Mosquitto on a free loopback port, with one user, and wait until it answers.

        Raises:
            BackendUnavailable: the binary is missing.
            BrokerStartError: the broker does not answer in time.
        """
        folder = Path(tempfile.mkdtemp(prefix="mqkit-grade-mqtt-"))
        settings = Settings.from_env(env={}, backend="process", state_dir=folder,
                                     mosquitto_binary=binary,
                                     startup_timeout=MOSQUITTO_START_TIMEOUT)
        backend = ProcessBackend(settings, (MOSQUITTO,), username=username)
        try:
            url = backend.start().mqtt_url
        except BaseException:
            backend.stop()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(backend, folder, url)

    def stop(self) -> None:
        """Stop the broker and remove its folder."""
        try:
            self.backend.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Namespace:
    """A submission's vhost, user and Mosquitto, and the endpoints that reach them.

    Attributes:
        vhost: the RabbitMQ virtual host (also the user name).
        endpoints: AMQP URL with the scoped user and vhost, the own Mosquitto's URL, and the
            management URL with the scoped user (``backend`` is ``external``).
        is_removed: True once :meth:`close` deleted the vhost and the user.
    """

    vhost: str
    endpoints: Endpoints
    admin: Admin = field(repr=False)
    mosquitto: SubmissionMosquitto | None = field(default=None, repr=False)
    is_removed: bool = field(default=False, repr=False)

    @classmethod
    def create(cls, broker: Endpoints, label: str, *, with_mqtt: bool = True,
               mosquitto_binary: str = "mosquitto",
               limits: Limits = GRADING_LIMITS,
               on_created: Callable[[str], None] | None = None) -> Namespace:
        """Create a fresh vhost and user on ``broker``'s RabbitMQ (and start a Mosquitto).

        Args:
            broker: the instructor's brokers (an administrator's management URL).
            label: readable part of the vhost name (the student); a random suffix keeps
                concurrent and repeated gradings apart.
            with_mqtt: start an own Mosquitto; without it the submission gets the
                instructor's MQTT URL (for labs that do not use MQTT).
            mosquitto_binary: the Mosquitto executable.
            limits: the vhost limits and queue caps of the submission.
            on_created: called with the vhost's name before it is made, so a caller can
                remove it later even when this call fails half-way (the broker died).
        """
        admin = Admin(broker)
        name = f"grade-{_slug(label)}-{secrets.token_hex(4)}"
        password = new_password()
        space = cls(name, broker, admin)
        if on_created is not None:
            on_created(name)
        try:
            provision(admin, name, name, password, limits,
                      description=f"mqkit grading of {label}")
            mqtt = broker.mqtt_url
            if with_mqtt:
                space.mosquitto = SubmissionMosquitto.start(name, mosquitto_binary)
                mqtt = space.mosquitto.url
            manage = broker.management
            assert manage is not None
            space.endpoints = Endpoints(
                amqp_url=amqp_url(broker.amqp.host, broker.amqp.port, name, password, name),
                mqtt_url=mqtt,
                management_url=http_url(manage.host, manage.port, name, password),
                backend="external")
        except BaseException:
            space.close()
            raise
        log.info("created grading namespace %s", name)
        return space

    def environment(self) -> dict[str, str]:
        """The ``MQKIT_*`` variables that point a notebook kernel at this namespace."""
        return {"MQKIT_BACKEND": "external", "MQKIT_AMQP_URL": self.endpoints.amqp_url,
                "MQKIT_MQTT_URL": self.endpoints.mqtt_url,
                "MQKIT_MANAGEMENT_URL": self.endpoints.management_url}

    def close(self) -> None:
        """Close the user's connections, delete the vhost and the user, stop Mosquitto."""
        try:
            self.admin.delete_namespace(self.vhost, self.vhost, reason="grading finished")
            self.is_removed = True
        except Exception as exc:  # cleanup goes on: report, do not stop the batch
            log.warning("could not clean up grading namespace %s: %s", self.vhost, exc)
        if self.mosquitto is not None:
            self.mosquitto.stop()
        if self.is_removed:
            log.info("removed grading namespace %s", self.vhost)

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
