"""One student's namespace on the classroom RabbitMQ: a vhost, a user, limits and caps.

The student's user has every permission on the student's vhost and none elsewhere, and the
``management`` tag, so the labs' widgets and self-checks read that vhost through the
management API while every other vhost stays invisible (RabbitMQ answers 401 for it, over
AMQP as over HTTP). On top come the vhost limits and the operator policy of
:class:`~mqkit.classroom.limits.Limits`; both are set by the administrator, and the student's
tags allow changing neither.

Example:
    >>> provision(Admin(url), "student-ann", "student-ann", password, Limits())  # doctest: +SKIP
"""

from __future__ import annotations

import logging

from mqkit.admin import Admin
from mqkit.classroom.limits import POLICY_NAME, Limits

log = logging.getLogger(__name__)


def provision(admin: Admin, vhost: str, user: str, password: str, limits: Limits, *,
              description: str = "") -> None:
    """Create (or bring back) a student's vhost and user, with limits and caps.

    Every request is idempotent: running it again on a namespace that exists sets the same
    password, permissions, limits and policy once more.

    Raises:
        MQKitError: the management API refused or did not answer.
    """
    admin.create_namespace(vhost, user, password, description=description)
    for name, value in limits.vhost_limits().items():
        admin.set_vhost_limit(vhost, name, value)
    admin.set_operator_policy(vhost, POLICY_NAME, limits.operator_policy())
    log.debug("provisioned vhost %s for user %s", vhost, user)


def remove(admin: Admin, vhost: str, user: str) -> None:
    """Close the student's connections and delete their vhost (with everything in it) and user.

    Raises:
        MQKitError: a step failed; the others were still tried.
    """
    admin.delete_namespace(vhost, user, reason="removed from the classroom by the instructor")
    log.debug("removed vhost %s and user %s", vhost, user)
