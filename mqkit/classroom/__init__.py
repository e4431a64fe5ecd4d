"""Classroom mode: a private namespace per student on a shared RabbitMQ, and their cards.

``mqkit classroom create ROSTER.csv --out DIR`` gives every student of the roster a vhost
and a user of their own on the classroom's RabbitMQ (with limits and an operator policy), a
Mosquitto of their own run by mqkit, and a connection card ``DIR/<id>.env``. The pieces, one
module each:

* :mod:`~mqkit.classroom.roster` — read and check ``ROSTER.csv``;
* :mod:`~mqkit.classroom.limits` — what one student may use, and why that much;
* :mod:`~mqkit.classroom.broker` — the shared RabbitMQ, reached as an administrator;
* :mod:`~mqkit.classroom.namespace` — one student's vhost, user, limits and policy;
* :mod:`~mqkit.classroom.mosquitto` — one student's Mosquitto (the classroom backend);
* :mod:`~mqkit.classroom.record` — ``DIR/classroom.json``, what later commands need;
* :mod:`~mqkit.classroom.cards` — cards, the instructor's CSV, the systemd unit;
* :mod:`~mqkit.classroom.classroom` — :class:`Classroom`: create, status, remove, up, down.
"""

from mqkit.classroom.broker import ClassBroker, connect, parse_nodes
from mqkit.classroom.classroom import Classroom, CreateReport, StudentStatus, UpReport
from mqkit.classroom.limits import Limits
from mqkit.classroom.roster import Student, parse_roster, read_roster

__all__ = [
    "ClassBroker",
    "Classroom",
    "CreateReport",
    "Limits",
    "Student",
    "StudentStatus",
    "UpReport",
    "connect",
    "parse_nodes",
    "parse_roster",
    "read_roster",
]
