"""Translate the errors RabbitMQ reports on a channel or connection into mqkit's.

When the broker rejects a command it closes the channel (or, for some codes, the whole
connection) with a reply code and a short text: ``(503) COMMAND_INVALID - unknown exchange
type 'nonsense'``. That names the cause but not the fix, and the reply code changed between
versions. :func:`translate_amqp_error` recognises the cases students meet and returns an
:class:`~mqkit.exceptions.BrokerRefused` subclass that says what to do:

* an unknown exchange type: RabbitMQ 3.x closes the *connection* with ``503
  COMMAND_INVALID``; newer brokers close the channel with ``406 PRECONDITION_FAILED`` —
  both become :class:`~mqkit.exceptions.InvalidExchangeType`;
* a transient, non-exclusive queue on RabbitMQ 4.x (``406 PRECONDITION_FAILED`` naming the
  deprecated feature ``transient_nonexcl_queues``) becomes
  :class:`~mqkit.exceptions.QueueRefused`;
* a topic binding key with more than two ``#`` wildcards on RabbitMQ 4.3 (``406
  PRECONDITION_FAILED``; 3.10 and 4.0 accept it) becomes a
  :class:`~mqkit.exceptions.BrokerRefused` that says to drop the extra ``#``.

:class:`~mqkit.clients.NotebookChannel` applies it to every call; code that uses pika
directly can wrap its calls in :func:`amqp_errors`.

Example:
    >>> with amqp_errors():                                        # doctest: +SKIP
    ...     channel.exchange_declare("logs", exchange_type="fanout")
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from mqkit.exceptions import BrokerRefused, InvalidExchangeType, QueueRefused

#: The exchange types every RabbitMQ knows (plugins add more, e.g. x-delayed-message).
EXCHANGE_TYPES = ("direct", "fanout", "headers", "topic")

_EXCHANGE_TYPE = re.compile(r"(?:unknown|invalid) exchange type '?([^'\s]*)'?", re.IGNORECASE)


def _code_and_text(exc: BaseException) -> tuple[int | None, str]:
    """The AMQP reply code and text of a pika ``ChannelClosedByBroker`` or the like."""
    code = getattr(exc, "reply_code", None)
    text = getattr(exc, "reply_text", None)
    if code is None and len(exc.args) >= 2 and isinstance(exc.args[0], int):
        code, text = exc.args[0], exc.args[1]
    if code is None and len(exc.args) == 1 and isinstance(exc.args[0], BaseException):
        return _code_and_text(exc.args[0])  # pika wraps the reason of a lost connection
    return (int(code) if code is not None else None), str(text or "")


def translate_amqp_error(exc: BaseException, *, during: str = "",
                         args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                         ) -> BrokerRefused | None:
    """Return the mqkit error for a broker's rejection of a command, or ``None``.

    Args:
        exc: what pika raised (``ChannelClosedByBroker``, ``ConnectionClosedByBroker``...).
        during: the pika method that was called (``exchange_declare``), when known.
        args: its positional arguments (the exchange or queue name is read from them).
        kwargs: its keyword arguments.

    Returns:
        An :class:`~mqkit.exceptions.InvalidExchangeType`,
        :class:`~mqkit.exceptions.QueueRefused` or :class:`~mqkit.exceptions.BrokerRefused`;
        ``None`` for errors it does not know (the
        caller re-raises the original).
    """
    kwargs = kwargs or {}
    code, text = _code_and_text(exc)
    if code is None:
        return None
    lowered = text.lower()
    seen = f"RabbitMQ answered ({code}) {text}"
    match = _EXCHANGE_TYPE.search(text)
    if code in (503, 406) and (match or (during == "exchange_declare" and "type" in lowered)):
        given = match.group(1) if match else kwargs.get("exchange_type", "?")
        name = kwargs.get("exchange", args[0] if args else "?")
        return InvalidExchangeType(
            f"The exchange {name!r} cannot be declared: {given!r} is not an exchange type. "
            f"{seen}.", reply_code=code, reply_text=text,
            hint=f"Use one of exchange_type={', '.join(map(repr, EXCHANGE_TYPES))} "
                 "(a plugin's type needs that plugin enabled). The broker closed the "
                 "channel (RabbitMQ 3.x: the connection); mqkit's notebook connection "
                 "re-opens it on the next call.")
    if code == 406 and "transient" in lowered and (during in ("", "queue_declare")
                                                   or "queue" in lowered):
        name = kwargs.get("queue", args[0] if args else "?")
        return QueueRefused(
            f"The queue {name!r} was refused: this RabbitMQ does not allow queues that are "
            f"neither durable nor exclusive (transient non-exclusive). {seen}.",
            reply_code=code, reply_text=text,
            hint="Declare it with durable=True (it survives a restart) or exclusive=True "
                 "(it belongs to this connection and goes away with it). Transient "
                 "non-exclusive queues are deprecated in RabbitMQ 4.x, and a broker can be "
                 "configured to deny them, as this one is.")
    if code == 406 and "binding key" in lowered and "wildcards" in lowered:
        return BrokerRefused(
            f"The binding was refused: its topic binding key has too many '#' wildcards. "
            f"{seen}.", reply_code=code, reply_text=text,
            hint="One '#' already matches any number of words: drop the extra ones. "
                 "RabbitMQ 4.3 allows at most two '#' in a binding key (3.10 and 4.0 "
                 "accepted more).")
    return None


@contextlib.contextmanager
def amqp_errors(during: str = "") -> Iterator[None]:
    """Raise mqkit's error for a broker rejection that :func:`translate_amqp_error` knows.

    Args:
        during: the pika method being called, to sharpen the message.
    """
    try:
        yield
    except Exception as exc:
        translated = translate_amqp_error(exc, during=during)
        if translated is None:
            raise
        raise translated from exc
