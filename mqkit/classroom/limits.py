"""What one student may use of the shared brokers, so that no student exhausts them.

The sizes are for the labs as they are (see ``docs/classroom.md`` for the figures):

* ``max_connections`` 64 (a RabbitMQ vhost limit): a lab kernel holds one connection for
  its cells and one more per live widget or background worker (an inbox, an RPC server, a
  work-queue consumer); a self-check opens a short one. Run with a card, lab 03's solution
  held 5 at once and lab 08's 3; 64 leaves room for many lab notebooks open at once and
  reconnects, while a loop
  that opens connections without closing them stops at 64 instead of at the broker's
  file-descriptor limit, which every student shares.
* ``max_queues`` 200 (a RabbitMQ vhost limit): a lab declares at most a few dozen queues and
  labs clean up only at their start, so all twelve labs' leftovers fit; a runaway loop does
  not fill the broker's memory with queues.
* ``max_length`` 10,000 messages and ``max_length_bytes`` 16 MiB per queue (an operator
  policy on the student's vhost): the labs send a few hundred messages at the most. A student
  cannot raise these (students have no ``policymaker`` tag, and where a queue's own
  ``x-max-length`` or a user policy also applies, the lower value wins); above the cap the
  oldest messages are dropped, which a lab that overflows a queue on purpose does with its
  own, smaller ``x-max-length``.
* ``mqtt_max_connections`` 64 and ``mqtt_memory`` 64 MiB for the student's own Mosquitto,
  for the same reasons: the MQTT labs hold a handful of clients, and a 64 MiB heap holds far
  more retained messages and queued QoS 1/2 messages than they make.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from mqkit.exceptions import ConfigError

#: The name of the operator policy on each student's vhost.
POLICY_NAME = "mqkit-classroom-caps"


@dataclass(frozen=True)
class Limits:
    """The per-student limits of a classroom (sizes explained in the module docstring).

    Attributes:
        max_connections: AMQP connections open at once in the student's vhost.
        max_queues: queues in the student's vhost.
        max_length: messages per queue (operator policy).
        max_length_bytes: message bytes per queue (operator policy).
        mqtt_max_connections: MQTT clients connected at once to the student's Mosquitto.
        mqtt_memory: bytes of heap the student's Mosquitto may allocate.
    """

    max_connections: int = 64
    max_queues: int = 200
    max_length: int = 10_000
    max_length_bytes: int = 16 * 1024 * 1024
    mqtt_max_connections: int = 64
    mqtt_memory: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        bad = [f.name for f in fields(self)
               if not isinstance(getattr(self, f.name), int) or getattr(self, f.name) < 1]
        if bad:
            raise ConfigError(f"Classroom limits must be whole numbers of at least 1: "
                              f"{', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}.",
                              hint="Leave a limit out to get its default.")

    def vhost_limits(self) -> dict[str, int]:
        """RabbitMQ's vhost limits, by the names the management API uses."""
        return {"max-connections": self.max_connections, "max-queues": self.max_queues}

    def operator_policy(self) -> dict[str, int]:
        """The definition of the operator policy that caps every queue of the vhost."""
        return {"max-length": self.max_length, "max-length-bytes": self.max_length_bytes}

    def mosquitto_config(self) -> str:
        """Lines added to the student's ``mosquitto.conf`` (after its one listener)."""
        return (f"# Classroom limits (mqkit.classroom.limits).\n"
                f"max_connections {self.mqtt_max_connections}\n"
                f"memory_limit {self.mqtt_memory}\n")

    def to_dict(self) -> dict[str, int]:
        """The limits as saved in the classroom's record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        """Limits from a record (unknown keys ignored, missing ones default)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
