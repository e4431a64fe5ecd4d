"""The classroom's own record, ``DIR/classroom.json``: what ``list``, ``remove`` and ``up`` need.

It holds the students' passwords (the cards are made from it), so the folder is ``0700``
and the files ``0600``, as mqkit's state directory. A student is ``ready`` once their vhost,
user and Mosquitto exist and their card is written; a ``create`` that stopped half-way
leaves the others marked not ready, and the next ``create`` finishes them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mqkit.classroom.limits import Limits
from mqkit.exceptions import ConfigError
from mqkit.urls import BrokerAddress

#: The record's file name inside the classroom folder.
RECORD_FILE = "classroom.json"
FORMAT = 1


@dataclass
class StudentRecord:
    """One student's namespace as created.

    Attributes:
        id: the roster id.
        name: the roster name.
        user: RabbitMQ and Mosquitto user name (also the vhost's name).
        password: the RabbitMQ password (AMQP and management API).
        mqtt_port: the port of the student's Mosquitto.
        mqtt_password: the Mosquitto password ('' until it first started).
        ready: vhost, user and Mosquitto exist and the card is written.
        created: when ``create`` first made it (ISO 8601, UTC).
    """

    id: str
    name: str
    user: str
    password: str
    mqtt_port: int
    mqtt_password: str = ""
    ready: bool = False
    created: str = ""

    @property
    def vhost(self) -> str:
        """The student's vhost (named like the user)."""
        return self.user


@dataclass
class ClassroomRecord:
    """Everything a classroom folder knows about its broker and its students.

    Attributes:
        broker: ``scheme://host:port`` of the RabbitMQ management API it was created on.
        public_host: the host name written into the cards.
        amqp_port: the AMQP port in the cards.
        management_scheme: ``http`` or ``https`` for the cards' management URL.
        management_port: the management port in the cards.
        prefix: put before a student id to name their vhost and user.
        mqtt_listen: the address the students' Mosquittos listen on.
        mqtt_ports: an inclusive port range for them, or ``None`` for any free port.
        limits: the per-student limits.
        students: by id.
        failover: further nodes of a cluster (``host:port``) after the first in the cards.
    """

    broker: str
    public_host: str
    amqp_port: int
    management_scheme: str
    management_port: int
    prefix: str
    mqtt_listen: str
    mqtt_ports: tuple[int, int] | None = None
    limits: Limits = field(default_factory=Limits)
    students: dict[str, StudentRecord] = field(default_factory=dict)
    failover: list[str] = field(default_factory=list)

    def find(self, student_id: str) -> StudentRecord | None:
        """The student with this id, compared without case."""
        wanted = student_id.lower()
        return next((s for key, s in self.students.items() if key.lower() == wanted), None)

    @property
    def progress_vhost(self) -> str:
        """The progress board's vhost: the prefix without its separator, then ``:progress``.

        A student id cannot hold ``:``, so this is never a student's vhost.
        """
        return f"{self.prefix.rstrip('-_.') or 'mqkit'}:progress"

    def urls(self, student: StudentRecord) -> dict[str, str]:
        """The student's card: the ``MQKIT_*`` URLs of their namespace.

        ``MQKIT_AMQP_URL``, ``MQKIT_MQTT_URL`` and ``MQKIT_MANAGEMENT_URL``, and
        ``MQKIT_CLASSROOM_URL``, where self-checks send their verdicts.
        """
        host, user = self.public_host, student.user

        def amqp(vhost: str) -> str:
            nodes = [(host, self.amqp_port)] + [
                (node.rsplit(":", 1)[0], int(node.rsplit(":", 1)[1])) for node in self.failover]
            return ",".join(BrokerAddress("amqp", node_host, port, user, student.password,
                                          vhost).url() for node_host, port in nodes)

        return {
            "MQKIT_AMQP_URL": amqp(student.vhost),
            "MQKIT_MQTT_URL": BrokerAddress("mqtt", host, student.mqtt_port, user,
                                            student.mqtt_password).url(),
            "MQKIT_MANAGEMENT_URL": BrokerAddress(self.management_scheme, host,
                                                  self.management_port, user,
                                                  student.password).url(),
            "MQKIT_CLASSROOM_URL": amqp(self.progress_vhost),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON object saved in ``classroom.json``."""
        data = asdict(self)
        data["limits"] = self.limits.to_dict()
        data["format"] = FORMAT
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassroomRecord:
        """A record from saved JSON.

        Raises:
            ConfigError: not a classroom record this mqkit can read.
        """
        if data.get("format") != FORMAT:
            raise ConfigError(f"This classroom record has format {data.get('format')!r}; "
                              f"this mqkit reads format {FORMAT}.",
                              hint="Use the mqkit version that created the classroom.")
        known = {f.name for f in fields(StudentRecord)}
        students = {key: StudentRecord(**{k: v for k, v in value.items() if k in known})
                    for key, value in data.get("students", {}).items()}
        ports = data.get("mqtt_ports")
        return cls(broker=data["broker"], public_host=data["public_host"],
                   amqp_port=int(data["amqp_port"]),
                   management_scheme=data["management_scheme"],
                   management_port=int(data["management_port"]), prefix=data["prefix"],
                   mqtt_listen=data["mqtt_listen"],
                   mqtt_ports=(int(ports[0]), int(ports[1])) if ports else None,
                   limits=Limits.from_dict(data.get("limits", {})), students=students,
                   failover=[str(node) for node in data.get("failover", [])])


def load_record(folder: Path) -> ClassroomRecord | None:
    """The record of the classroom in ``folder``, or ``None`` when there is none.

    Raises:
        ConfigError: the file exists but is not a readable record.
    """
    path = folder / RECORD_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return ClassroomRecord.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a readable classroom record: {exc!r}.",
                          hint="It is written by `mqkit classroom create`; restore it from a "
                               "backup rather than editing it by hand.") from None


def save_record(folder: Path, record: ClassroomRecord) -> None:
    """Write the record atomically, readable by the owner only."""
    write_private(folder / RECORD_FILE, json.dumps(record.to_dict(), indent=2, sort_keys=True)
                  + "\n")


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write ``text`` atomically with ``mode``, in a folder only its owner can enter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path
