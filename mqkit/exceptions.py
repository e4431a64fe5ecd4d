"""The one exception tree of mqkit.

Every error mqkit raises says what failed, what was seen, and (after ``Hint:``) what to do
next::

    MQKitError
    ├── ConfigError (ValueError)            unknown backend, malformed URL, bad MQKIT_* value
    │   └── ResourceNotFound                the management API has no such vhost/queue (404)
    ├── MissingDependency (ImportError)     an optional extra is not installed (docker, ...)
    ├── BackendUnavailable (RuntimeError)   Docker socket absent, broker binary missing
    │   └── NoBackendError                  ``auto`` found no way to get a broker
    ├── BrokerStartError (RuntimeError)     a broker could not be started
    │   ├── PortInUseError                  a requested port is taken
    │   ├── ImageUnavailable                image missing and cannot be pulled
    │   ├── BrokerExited                    the broker process/container died while starting
    │   └── BrokerTimeout (TimeoutError)    not ready within MQKIT_STARTUP_TIMEOUT
    ├── BrokerNotRunning (RuntimeError)     asked to restart/kill/connect, nothing runs
    ├── SandboxUnavailable (RuntimeError)   the grader's sandbox cannot run here (not root, ...)
    ├── BrokerConnectionError (ConnectionError)  a running broker cannot be reached
    │   ├── AuthenticationError             wrong user or password
    │   ├── ConnectionLost                  a connection dropped (e.g. missed heartbeats)
    │   └── DuplicateClientId               another MQTT client took over the same client id
    └── BrokerRefused (RuntimeError)        the broker closed a channel: a command it rejects
        ├── InvalidExchangeType             exchange_declare with an unknown exchange type
        └── QueueRefused                    a queue the broker forbids (4.x: transient
                                            non-exclusive)
"""

from __future__ import annotations


class MQKitError(Exception):
    """Base class of every error mqkit raises.

    Args:
        message: what failed and what was seen.
        hint: the next step for the reader; appended as ``Hint: ...``.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class ConfigError(MQKitError, ValueError):
    """A setting, argument or URL is invalid."""


class ResourceNotFound(ConfigError):
    """The management API has no such vhost, user, queue or exchange (HTTP 404)."""


class MissingDependency(MQKitError, ImportError):
    """An optional part of mqkit needs a package that is not installed (see its hint)."""


class BackendUnavailable(MQKitError, RuntimeError):
    """A backend cannot run on this machine (no Docker engine, no broker binary, ...)."""


class NoBackendError(BackendUnavailable):
    """``auto`` tried every backend and none can provide a broker."""


class BrokerStartError(MQKitError, RuntimeError):
    """A broker could not be started."""


class PortInUseError(BrokerStartError):
    """A port mqkit was asked to use is already taken."""


class ImageUnavailable(BrokerStartError):
    """A Docker image is not present locally and could not be pulled."""


class BrokerExited(BrokerStartError):
    """A broker process or container stopped while mqkit waited for it."""


class BrokerTimeout(BrokerStartError, TimeoutError):
    """A broker did not become ready in time."""


class BrokerNotRunning(MQKitError, RuntimeError):
    """An operation needs a running broker and there is none."""


class SandboxUnavailable(MQKitError, RuntimeError):
    """The sandbox asked for to grade untrusted notebooks cannot run on this machine."""


class BrokerConnectionError(MQKitError, ConnectionError):
    """A broker could not be reached or refused the connection."""


class AuthenticationError(BrokerConnectionError):
    """The broker refused the user name or password."""


class ConnectionLost(BrokerConnectionError):
    """An established connection to a broker was lost."""


class DuplicateClientId(BrokerConnectionError):
    """Two MQTT clients use one client id, so the broker keeps disconnecting one of them.

    Attributes:
        client_id: the client id both clients use.
    """

    def __init__(self, message: str, *, client_id: str, hint: str | None = None) -> None:
        self.client_id = client_id
        super().__init__(message, hint=hint)


class BrokerRefused(MQKitError, RuntimeError):
    """The broker closed a channel because it rejects a command (AMQP channel error).

    Attributes:
        reply_code: the AMQP reply code (``406``, ``503``, ...), when there was one.
        reply_text: the broker's own words.
    """

    def __init__(self, message: str, *, reply_code: int | None = None, reply_text: str = "",
                 hint: str | None = None) -> None:
        self.reply_code = reply_code
        self.reply_text = reply_text
        super().__init__(message, hint=hint)


class InvalidExchangeType(BrokerRefused):
    """``exchange_declare`` named an exchange type the broker does not know."""


class QueueRefused(BrokerRefused):
    """The broker refuses a queue of this kind (RabbitMQ 4.x: transient and non-exclusive)."""
