"""A pure model of where messages go: AMQP 0-9-1 exchanges and MQTT topic filters.

No I/O: given an exchange's bindings and a message, :func:`route` says for every binding
whether it matches and why; :func:`topic_matches` does the same for one MQTT topic filter and
one topic. The model is checked against the real RabbitMQ and Mosquitto by property-based tests
(``tests/integration/test_routing_vs_rabbitmq.py`` and ``test_topic_filters_vs_mosquitto.py``).

Example:
    >>> from mqkit.routing import Binding, route
    >>> bindings = [Binding("sports", "sports.#"), Binding("tech", "#.technology")]
    >>> [m.matched for m in route("topic", bindings, "sports.football")]
    [True, False]
    >>> print(route("topic", [Binding("q", "sports.*")], "sports")[0].reason)
    `*` needs exactly one word; `sports` has none after it

RabbitMQ facts the model encodes (checked on RabbitMQ 3.10):

* topic: the routing key is split on every ``.``, keeping empty words (``a..b`` has three
  words, ``.a`` two); the empty routing key has no words at all.
* headers: values compare by value, not by AMQP type, except that strings, numbers, booleans
  and decimals never equal one another: ``"1"`` differs from ``1``, ``1`` from ``True``, but a
  string equals the same bytes, and a timestamp equals its integer seconds.
* the ``CC`` and ``BCC`` headers (arrays; their strings) add routing keys for direct and
  topic exchanges (sender-selected distribution); any other type there closes the channel.
"""

from __future__ import annotations

import calendar
import decimal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mqkit.exceptions import ConfigError

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")
#: Headers whose string arrays RabbitMQ adds to the routing keys.
ROUTING_HEADERS = ("CC", "BCC")
_VOID = ("void",)


@dataclass(frozen=True)
class Binding:
    """One binding of an exchange to a queue (or to another exchange).

    Attributes:
        destination: the queue (or exchange) name.
        binding_key: the routing key given to ``queue_bind`` (ignored by fanout and headers).
        arguments: binding arguments; for headers exchanges the headers to compare and
            ``x-match`` (``all`` when absent).
        destination_type: ``queue`` or ``exchange`` (an exchange-to-exchange binding).
    """

    destination: str
    binding_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)
    destination_type: str = "queue"


@dataclass(frozen=True)
class Message:
    """What an exchange looks at: the routing key and the headers.

    Attributes:
        routing_key: the routing key given to ``basic_publish``.
        headers: the message's headers property (``None`` for none).
    """

    routing_key: str = ""
    headers: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Match:
    """Whether one binding matches a message, and why; true in a boolean context.

    Attributes:
        binding: the binding judged.
        matched: whether the exchange routes the message along this binding.
        reason: a sentence for humans.
    """

    binding: Binding
    matched: bool
    reason: str

    def __bool__(self) -> bool:
        return self.matched


@dataclass(frozen=True)
class TopicMatch:
    """Whether an MQTT topic filter matches a topic, and why; true in a boolean context.

    Attributes:
        topic_filter: the subscription's filter.
        topic: the topic a message was published to.
        matched: whether a subscriber with this filter receives the message.
        reason: a sentence for humans.
    """

    topic_filter: str
    topic: str
    matched: bool
    reason: str

    def __bool__(self) -> bool:
        return self.matched


def route(exchange_type: str, bindings: Iterable[Binding], routing_key: str | Message = "",
          headers: Mapping[str, Any] | None = None, *, accepted: bool = False) -> list[Match]:
    """Judge every binding of an exchange against one message.

    Args:
        exchange_type: ``direct``, ``fanout``, ``topic`` or ``headers``.
        bindings: the exchange's bindings.
        routing_key: the message's routing key, or a whole :class:`Message`.
        headers: the message's headers (when ``routing_key`` is a string).
        accepted: the bindings were read from a broker, which took them. A topic key with
            more ``#`` than RabbitMQ 4.3 allows (so the broker is 3.10 or 4.0) is then
            judged as those brokers route by it, and its reason says 4.3 would refuse it.

    Returns:
        One :class:`Match` per binding, in the order given.

    Raises:
        ConfigError: an unknown exchange type, a binding RabbitMQ would refuse (a headers
            binding with a bad ``x-match``; a topic binding key with more than
            :data:`MAX_TOPIC_HASHES` ``#`` words, refused by RabbitMQ 4.3), or
            ``CC``/``BCC`` headers that are not lists (the broker closes the channel).

    Example:
        >>> route("fanout", [Binding("a")], "ignored")[0].reason
        'fanout ignores the routing key: every bound queue gets a copy'
    """
    if isinstance(routing_key, Message):
        routing_key, headers = routing_key.routing_key, routing_key.headers
    if exchange_type not in EXCHANGE_TYPES:
        raise ConfigError(f"Unknown exchange type {exchange_type!r}.",
                          hint=f"Use one of: {', '.join(EXCHANGE_TYPES)}.")
    headers = dict(headers or {})
    extra_keys = _cc_routing_keys(headers)
    if exchange_type == "fanout":
        return [Match(b, True, "fanout ignores the routing key: every bound queue gets a copy")
                for b in bindings]
    if exchange_type == "headers":
        return [_headers_match(b, headers) for b in bindings]
    judge = _direct_match if exchange_type == "direct" else _topic_match
    refused_by_43: set[int] = set()
    if exchange_type == "topic":
        bindings = list(bindings)
        for index, binding in enumerate(bindings):
            try:
                _check_topic_binding_key(binding.binding_key)
            except ConfigError:
                if not accepted:
                    raise
                refused_by_43.add(index)
    matches = []
    for index, binding in enumerate(bindings):
        match = judge(binding, routing_key)
        for key in extra_keys:
            if match.matched:
                break
            cc = judge(binding, key)
            if cc.matched:
                match = Match(binding, True, f"via the CC/BCC routing key `{key}`: {cc.reason}")
        if index in refused_by_43:
            match = Match(binding, match.matched,
                          f"{match.reason} (this broker took the key; RabbitMQ 4.3 refuses "
                          f"more than {MAX_TOPIC_HASHES} '#' in one)")
        matches.append(match)
    return matches


def destinations(matches: Iterable[Match]) -> list[str]:
    """The destinations that receive a copy, each once, in binding order.

    A queue bound twice gets one copy, however many of its bindings match.
    """
    seen: dict[str, None] = {}
    for match in matches:
        if match.matched:
            seen.setdefault(match.binding.destination)
    return list(seen)


def split_topic_key(key: str) -> list[str]:
    """Split a topic routing or binding key into words as RabbitMQ does.

    Every ``.`` separates two words, so empty words are kept; the empty key has no words.

    Example:
        >>> split_topic_key("a..b"), split_topic_key(""), split_topic_key(".")
        (['a', '', 'b'], [], ['', ''])
    """
    return key.split(".") if key else []


# --- direct and topic ---------------------------------------------------------------------


def _cc_routing_keys(headers: Mapping[str, Any]) -> list[str]:
    keys = []
    for name in ROUTING_HEADERS:
        value = headers.get(name)
        if value is None and name not in headers:
            continue
        if not isinstance(value, list | tuple):
            raise ConfigError(f"The {name} header is {value!r}; RabbitMQ accepts only an array "
                              "there and closes the channel (406 PRECONDITION_FAILED).",
                              hint=f"Send {name} as a list of routing keys, or drop it.")
        # RabbitMQ skips array elements that are not strings.
        keys.extend(v for v in value if isinstance(v, str))
    return keys


def _direct_match(binding: Binding, routing_key: str) -> Match:
    key = binding.binding_key
    if key == routing_key:
        return Match(binding, True, f"the binding key `{key}` equals the routing key")
    why = (f"the binding key `{key}` is not the routing key `{routing_key}`: "
           "direct needs exact equality")
    if key.lower() == routing_key.lower():
        why += " (case matters)"
    return Match(binding, False, why)


def _word(word: str) -> str:
    return f"`{word}`" if word else "an empty word"


def _words(words: Sequence[str]) -> str:
    if not words:
        return "no words"
    return f"`{'.'.join(words)}`" if words != [""] else "an empty word"


#: The most ``#`` words a topic binding key may hold. RabbitMQ 4.3.6 refuses a binding with
#: more (``406 PRECONDITION_FAILED - Topic binding key '#.#.#' uses 3 '#' wildcards, at most
#: 2 are allowed``); 3.10.8 and 4.0.5 accept any number. The model follows the newest line,
#: the one mqkit's Docker images run: such a key means nothing more than one ``#`` does.
MAX_TOPIC_HASHES = 2


def _check_topic_binding_key(binding_key: str) -> None:
    hashes = split_topic_key(binding_key).count("#")
    if hashes > MAX_TOPIC_HASHES:
        raise ConfigError(
            f"The topic binding key {binding_key!r} uses {hashes} '#' wildcards: RabbitMQ 4.3 "
            f"refuses more than {MAX_TOPIC_HASHES} (406 PRECONDITION_FAILED); 3.10 and 4.0 "
            "still accept them.",
            hint="One '#' already matches any number of words: drop the extra ones.")


def _topic_match(binding: Binding, routing_key: str) -> Match:
    pattern, words = split_topic_key(binding.binding_key), split_topic_key(routing_key)
    # reachable[i][j]: the first i pattern words can match the first j routing-key words.
    n, m = len(pattern), len(words)
    reachable = [[False] * (m + 1) for _ in range(n + 1)]
    reachable[0][0] = True
    for i in range(n + 1):
        for j in range(m + 1):
            if not reachable[i][j] or i == n:
                continue
            if pattern[i] == "#":
                for k in range(j, m + 1):
                    reachable[i + 1][k] = True
            elif j < m and pattern[i] in ("*", words[j]):
                reachable[i + 1][j + 1] = True
    if reachable[n][m]:
        return Match(binding, True, _topic_success(pattern, words, reachable))
    return Match(binding, False, _topic_failure(pattern, words, reachable))


def _topic_success(pattern: list[str], words: list[str], reachable: list[list[bool]]) -> str:
    if not pattern and not words:
        return "the empty binding key matches the empty routing key"
    if all(p == "#" for p in pattern):
        return "`#` matches zero or more words, so every routing key"
    # Walk back from the end to find what each pattern word took.
    parts: list[str] = []
    i, j = len(pattern), len(words)
    while i > 0:
        p = pattern[i - 1]
        if p == "#":
            k = min(k for k in range(j + 1) if reachable[i - 1][k])
            taken = words[k:j]
            parts.append("`#` matches zero words here (it matches zero or more)" if not taken
                         else f"`#` matches {_words(taken)}")
            j = k
        elif p == "*":
            parts.append(f"`*` matches {_word(words[j - 1])}")
            j -= 1
        else:
            j -= 1
        i -= 1
    if not parts:
        return f"the binding key `{'.'.join(pattern)}` equals the routing key word for word"
    return "; ".join(reversed(parts))


def _topic_failure(pattern: list[str], words: list[str], reachable: list[list[bool]]) -> str:
    # Explain at the furthest point any partial match reached in the routing key.
    i, j = max(((i, j) for i in range(len(pattern) + 1) for j in range(len(words) + 1)
                if reachable[i][j]), key=lambda ij: (ij[1], ij[0]))
    done = words[:j]
    last_hash = max((k for k, p in enumerate(pattern) if p == "#"), default=-1)
    tail = pattern[last_hash + 1:]
    if 0 <= last_hash < i and tail:
        # The part up to the last `#` fits; what follows it must fit the end of the key.
        if len(words) < len(tail):
            return (f"after `#` the binding wants `{'.'.join(tail)}` ({len(tail)} word(s)); "
                    f"the routing key has only {len(words)} word(s)")
        return (f"after `#` the binding wants the routing key to end with "
                f"`{'.'.join(tail)}`; it ends with {_words(words[len(words) - len(tail):])}")
    if i == len(pattern):
        if not pattern:
            return "the empty binding key matches only the empty routing key"
        return (f"the routing key goes on with {_words(words[j:])} after {_words(done)}; "
                "only `#` matches more words")
    wanted = pattern[i]
    if j == len(words):
        if not words:
            where = "the routing key is empty (no words)"
            return (f"`*` needs exactly one word; {where}" if wanted == "*"
                    else f"the binding wants {_word(wanted)}; {where}")
        if wanted == "*":
            return f"`*` needs exactly one word; {_words(done)} has none after it"
        return f"the binding wants {_word(wanted)} after {_words(done)}; the routing key ends there"
    return (f"word {j + 1}: the binding wants {_word(wanted)}, "
            f"the routing key has {_word(words[j])}")


# --- headers ------------------------------------------------------------------------------


def _headers_match(binding: Binding, headers: Mapping[str, Any]) -> Match:
    args = binding.arguments
    mode = args.get("x-match", "all")
    if not isinstance(mode, str) or mode not in X_MATCH_MODES:
        raise ConfigError(
            f"Invalid x-match {mode!r} on the binding to {binding.destination!r}: "
            "RabbitMQ refuses the binding (406 PRECONDITION_FAILED).",
            hint=f"Use one of the strings {', '.join(X_MATCH_MODES)}.")
    with_x = mode.endswith("-with-x")
    is_all = mode.startswith("all")
    label = f"x-match={mode}" if "x-match" in args else "x-match=all (the default)"
    compared = sorted(k for k in args
                      if k != "x-match" and (with_x or not k.startswith("x-")))
    ignored = sorted(k for k in args if k != "x-match" and k not in compared)
    note = ""
    if ignored:
        note = (f" ({', '.join(f'`{k}`' for k in ignored)} ignored: arguments starting with "
                "`x-` count only with all-with-x/any-with-x)")
    if not compared:
        if is_all:
            return Match(binding, True, f"{label} with no headers to compare matches every "
                                        f"message{note}")
        return Match(binding, False, f"{label} with no headers to compare matches nothing{note}")
    results = [(key, *_compare_header(key, args[key], headers)) for key in compared]
    hits = [why for _key, ok, why in results if ok]
    misses = [why for _key, ok, why in results if not ok]
    if is_all:
        if not misses:
            return Match(binding, True, f"{label}: {' and '.join(hits)}{note}")
        return Match(binding, False, f"{label}: {misses[0]}{note}")
    if hits:
        return Match(binding, True, f"{label}: {hits[0]}{note}")
    return Match(binding, False, f"{label}: no header matches ({'; '.join(misses)}){note}")


def _compare_header(key: str, wanted: Any, headers: Mapping[str, Any]) -> tuple[bool, str]:
    if key not in headers:
        return False, f"the message has no `{key}` header"
    value = headers[key]
    if wanted is None:
        return True, f"`{key}` is present (a void binding value asks only for presence)"
    if _amqp_term(wanted) == _message_term(value):
        return True, f"`{key}` is {_show(value)}"
    why = f"`{key}` is {_show(value)}, the binding wants {_show(wanted)}"
    if isinstance(value, datetime):
        why += (" (RabbitMQ 4.x compares a message's timestamp header in milliseconds since "
                "1970 and a binding's in seconds; 3.10 compared seconds with seconds)")
    elif str(value) == str(wanted):
        why += (f" ({_kind(value)} vs {_kind(wanted)}: RabbitMQ compares typed values)")
    return False, why


def _message_term(value: Any) -> Any:
    """:func:`_amqp_term` of a message's top-level header value, as RabbitMQ 4.x sees it.

    Seen on 4.0.5 and 4.3.6: a message's timestamp header reaches the headers exchange in
    milliseconds (1970-01-01T00:00:01 matches a binding value of ``1000``, not ``1``, nor the
    same timestamp, whose binding value stays in seconds). 3.10.8 compared seconds.
    """
    if isinstance(value, datetime):
        return ("number", calendar.timegm(value.utctimetuple()) * 1000)
    return _amqp_term(value)


def _show(value: Any) -> str:
    return f"`{value}`" if isinstance(value, str) else f"`{value!r}`"


def _kind(value: Any) -> str:
    kinds = {str: "a string", bytes: "bytes", bool: "a boolean", int: "an integer",
             float: "a float", decimal.Decimal: "a decimal", type(None): "void"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _amqp_term(value: Any) -> Any:
    """What RabbitMQ compares for a header value, as pika encodes it (types mostly dropped)."""
    if value is None:
        return _VOID
    if isinstance(value, str):
        return ("binary", value.encode())
    if isinstance(value, bytes | bytearray):
        return ("binary", bytes(value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        # Erlang's == says 1 == 1.0; AMQP int widths do not matter at the top level.
        return ("number", value)
    if isinstance(value, datetime):
        return ("number", calendar.timegm(value.utctimetuple()))
    if isinstance(value, decimal.Decimal):
        return ("decimal", _decimal_parts(value))
    if isinstance(value, list | tuple):
        # Inside arrays and tables RabbitMQ keeps each value's AMQP type.
        return ("array", tuple(_typed_term(v) for v in value))
    if isinstance(value, Mapping):
        # Nested tables are compared as sent: key order matters.
        return ("table", tuple((str(k), _typed_term(v)) for k, v in value.items()))
    raise ConfigError(f"A header value of type {type(value).__name__} cannot be sent: {value!r}.",
                      hint="Use str, bytes, bool, int, Decimal, datetime, list, dict or None.")


def _typed_term(value: Any) -> tuple[str, Any]:
    if isinstance(value, str):
        tag = "S"
    elif isinstance(value, bytes | bytearray):
        tag = "x"
    elif isinstance(value, bool):
        tag = "t"
    elif isinstance(value, int):
        tag = "I" if -(2**31) <= value < 2**31 else "l"
    elif isinstance(value, float):
        tag = "d"
    elif isinstance(value, datetime):
        tag = "T"
    else:
        tag = type(value).__name__
    return tag, _amqp_term(value)


def _decimal_parts(value: decimal.Decimal) -> tuple[int, int]:
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        return -exponent, int(value * (decimal.Decimal(10) ** -exponent))
    return 0, int(value)


# --- MQTT ---------------------------------------------------------------------------------

_MAX_TOPIC_BYTES = 65535


def validate_topic_filter(topic_filter: str) -> None:
    """Check an MQTT subscription filter the way the spec (and Mosquitto) does.

    ``+`` must fill a whole level; ``#`` must fill the last level. Mosquitto disconnects a
    client that subscribes with an invalid filter. ``$share/GROUP/FILTER`` is a shared
    subscription (MQTT 5; Mosquitto accepts it from 3.1.1 clients too).

    Raises:
        ConfigError: the filter is invalid; the message says which level is wrong.
    """
    _check_common(topic_filter, "topic filter")
    inner = _shared_inner(topic_filter)
    levels = inner.split("/")
    for index, level in enumerate(levels, start=1):
        if "#" in level and level != "#":
            raise ConfigError(f"Invalid topic filter {topic_filter!r}: level {index} is "
                              f"{level!r}; `#` must be a whole level.",
                              hint="Write `a/#`, not `a#`.")
        if level == "#" and index != len(levels):
            raise ConfigError(f"Invalid topic filter {topic_filter!r}: `#` is level {index} of "
                              f"{len(levels)}; it must be the last level.",
                              hint="Use `+` for one level in the middle, e.g. `a/+/b`.")
        if "+" in level and level != "+":
            raise ConfigError(f"Invalid topic filter {topic_filter!r}: level {index} is "
                              f"{level!r}; `+` must be a whole level.",
                              hint="Write `a/+/b`, not `a/+x/b`.")


def validate_topic_name(topic: str) -> None:
    """Check a topic that a message is published to (no wildcards, not empty).

    Raises:
        ConfigError: the topic is invalid.
    """
    _check_common(topic, "topic")
    if "+" in topic or "#" in topic:
        raise ConfigError(f"Invalid topic {topic!r}: wildcards are only for subscriptions.",
                          hint="Publish to a concrete topic such as `sport/tennis`.")


def is_valid_topic_filter(topic_filter: str) -> bool:
    """True when :func:`validate_topic_filter` accepts the filter."""
    try:
        validate_topic_filter(topic_filter)
    except ConfigError:
        return False
    return True


def _check_common(text: str, what: str) -> None:
    if not text:
        raise ConfigError(f"Invalid {what}: it is empty.", hint="Use at least one character.")
    if "\x00" in text:
        raise ConfigError(f"Invalid {what} {text!r}: it contains U+0000.",
                          hint="Remove the NUL character.")
    if len(text.encode("utf-8", "surrogatepass")) > _MAX_TOPIC_BYTES:
        raise ConfigError(f"Invalid {what}: longer than {_MAX_TOPIC_BYTES} bytes.",
                          hint="Use a shorter name.")


def _shared_inner(topic_filter: str) -> str:
    if not topic_filter.startswith("$share/"):
        return topic_filter
    parts = topic_filter.split("/", 2)
    if len(parts) < 3 or not parts[1] or "+" in parts[1] or "#" in parts[1] or not parts[2]:
        raise ConfigError(f"Invalid shared subscription {topic_filter!r}.",
                          hint="Write `$share/GROUP/FILTER` with a non-empty group and filter.")
    return parts[2]


def topic_matches(topic_filter: str, topic: str) -> TopicMatch:
    """Whether a subscriber with ``topic_filter`` receives a message published to ``topic``.

    Levels are separated by ``/`` and may be empty (``/a`` has two levels, the first empty).
    ``+`` matches exactly one level, ``#`` (last) the parent level and any number of levels
    below it, and a filter starting with a wildcard does not match topics starting with ``$``.

    Args:
        topic_filter: a valid filter (see :func:`validate_topic_filter`).
        topic: a valid topic name (see :func:`validate_topic_name`).

    Raises:
        ConfigError: the filter or the topic is invalid.

    Example:
        >>> topic_matches("sport/+", "sport/tennis/player1").reason
        'the topic goes on with `player1` after `sport/tennis`; only `#` matches more levels'
    """
    validate_topic_filter(topic_filter)
    validate_topic_name(topic)
    inner = _shared_inner(topic_filter)
    prefix = ""
    if inner != topic_filter:
        prefix = f"shared subscription (group `{topic_filter.split('/')[1]}`), filter `{inner}`: "
    matched, reason = _mqtt_match(inner.split("/"), topic.split("/"), topic)
    return TopicMatch(topic_filter, topic, matched, prefix + reason)


def _level(level: str) -> str:
    return f"`{level}`" if level else "an empty level"


def _path(levels: Sequence[str]) -> str:
    return f"`{'/'.join(levels)}`" if levels != [""] else "an empty level"


def _mqtt_match(pattern: list[str], levels: list[str], topic: str) -> tuple[bool, str]:
    if topic.startswith("$") and pattern[0] in ("+", "#"):
        return False, (f"a filter starting with `{pattern[0]}` does not match topics starting "
                       "with `$` (such as `$SYS/...`)")
    parts: list[str] = []
    for index, wanted in enumerate(pattern):
        done = _path(levels[:index])
        if wanted == "#":
            rest = levels[index:]
            if not rest:
                parts.append(f"`#` matches zero levels here (it also matches the parent {done})")
            else:
                parts.append(f"`#` matches {_path(rest)}")
            return True, "; ".join(parts)
        if index == len(levels):
            if wanted == "+":
                return False, f"`+` needs exactly one level; {done} has none after it"
            return False, f"the filter wants {_level(wanted)} after {done}; the topic ends there"
        if wanted == "+":
            parts.append(f"`+` matches {_level(levels[index])}")
        elif wanted != levels[index]:
            return False, (f"level {index + 1}: the filter wants {_level(wanted)}, "
                           f"the topic has {_level(levels[index])}")
    if len(levels) > len(pattern):
        return False, (f"the topic goes on with {_path(levels[len(pattern):])} after "
                       f"{_path(levels[:len(pattern)])}; only `#` matches more levels")
    return True, "; ".join(parts) if parts else "the filter equals the topic"
