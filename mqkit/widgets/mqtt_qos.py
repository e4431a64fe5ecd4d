"""MQTT quality of service: the three levels, what each means, and the check of a given one.

Example:
    >>> check_qos(1)
    1
    >>> QOS_MEANING[2]
    'exactly once'
"""

from __future__ import annotations

from mqkit.exceptions import ConfigError

#: What each QoS level promises, as the publisher's dropdown shows it.
QOS_MEANING = {0: "at most once", 1: "at least once", 2: "exactly once"}


def check_qos(qos: int) -> int:
    """Return ``qos`` when it is 0, 1 or 2.

    Raises:
        ConfigError: any other value.
    """
    if qos not in QOS_MEANING:
        raise ConfigError(f"QoS must be 0, 1 or 2, not {qos!r}.",
                          hint="0 = at most once, 1 = at least once, 2 = exactly once.")
    return qos
