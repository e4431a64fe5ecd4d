"""Exchange checks (labs 04-07): where does the real broker route a probe message?

:func:`probe_routes` publishes marked probe messages to an exchange (publisher confirms,
``mandatory``), then takes them out of every observed queue again with ``basic_get``: the
probes are acknowledged (removed), anything else a queue held goes back when the probing
channel closes. The student's queues thus end as they were, and the answer is what the broker
did, not what a model predicts. A consumer on an observed queue may take a probe first, so
the observation names such queues in its notes.

Example:
    >>> seen = probe_routes(endpoints, "lab04.stocks", {"Stock A": Message("Stock A")},
    ...                     ["lab04.portfolio"])                    # doctest: +SKIP
    >>> seen.received["Stock A"]                                    # doctest: +SKIP
    {'lab04.portfolio'}
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mqkit.clients.workers import consumers_paused
from mqkit.endpoints import Endpoints
from mqkit.grading.registry import NotYet, check
from mqkit.routing import Message

log = logging.getLogger(__name__)

#: What a probe message may be given as: a routing key, a headers dict, or a Message.
MessageSpec = str | Mapping[str, Any] | Message


@dataclass
class RouteObservation:
    """Where the broker put each probe.

    Attributes:
        received: label -> the observed queues that received that probe.
        unroutable: labels the broker returned (no queue at all got them).
        missing: observed queues that do not exist.
        notes: remarks for humans (consumers that may have taken probes, locked queues).
    """

    received: dict[str, set[str]] = field(default_factory=dict)
    unroutable: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def as_message(spec: MessageSpec) -> Message:
    """A :class:`~mqkit.routing.Message` from a routing key, a headers dict or a Message."""
    if isinstance(spec, Message):
        return spec
    if isinstance(spec, str):
        return Message(spec)
    return Message("", dict(spec))


@contextlib.contextmanager
def _connection(endpoints: Endpoints | None, connection: Any) -> Iterator[Any]:
    if connection is not None:
        yield connection
        return
    from mqkit.clients import amqp_connection

    own = amqp_connection(endpoints, name="mqkit-probe")
    try:
        yield own
    finally:
        if own.is_open:
            own.close()


def _close(channel: Any) -> None:
    with contextlib.suppress(Exception):
        if channel.is_open:
            channel.close()


def bound_queues(endpoints: Endpoints, exchange: str) -> list[str]:
    """Queues an exchange reaches through its bindings, following exchange-to-exchange ones.

    The default exchange (``''``) gives ``[]``: it reaches every queue by name.
    """
    if not exchange:
        return []
    from mqkit.admin import Admin

    bindings = Admin(endpoints).bindings(endpoints.amqp.vhost or "/")
    queues: dict[str, None] = {}
    seen, todo = {exchange}, [exchange]
    while todo:
        source = todo.pop()
        for binding in bindings:
            if binding["source"] != source:
                continue
            name = binding["destination"]
            if binding["destination_type"] == "queue":
                queues.setdefault(name)
            elif name not in seen:
                seen.add(name)
                todo.append(name)
    return sorted(queues)


def probe_routes(endpoints: Endpoints | None, exchange: str,
                 messages: Mapping[str, MessageSpec], queues: Iterable[str], *,
                 connection: Any = None) -> RouteObservation:
    """Publish each message to ``exchange`` and observe which of ``queues`` got it.

    Args:
        endpoints: the brokers (ignored when ``connection`` is given).
        exchange: the exchange to publish to (``''``: the default exchange).
        messages: label -> routing key, headers dict or :class:`~mqkit.routing.Message`.
        queues: the queues to look in.
        connection: a pika or notebook connection to use, e.g. the one that owns exclusive
            queues (another connection may not read them).

    Returns:
        The observation; the probes are gone from the queues afterwards.

    Raises:
        NotYet: the exchange does not exist.
    """
    import pika
    import pika.exceptions as pe

    queues = list(dict.fromkeys(queues))
    run = uuid.uuid4().hex[:12]
    ids = {f"mqkit-probe-{run}-{i}": label for i, label in enumerate(messages)}
    observation = RouteObservation({label: set() for label in messages})
    # Live inboxes of this kernel step aside, so they do not take the probes.
    with consumers_paused(queues), _connection(endpoints, connection) as conn:
        present = _look_at_queues(conn, queues, observation)
        publisher = conn.channel()
        try:
            publisher.confirm_delivery()
            for message_id, label in ids.items():
                message = as_message(messages[label])
                properties = pika.BasicProperties(message_id=message_id, headers=(
                    dict(message.headers) if message.headers else None))
                try:
                    publisher.basic_publish(exchange, message.routing_key, label.encode(),
                                            properties, mandatory=True)
                except pe.UnroutableError:
                    observation.unroutable.add(label)
                except pe.ChannelClosedByBroker as exc:
                    if exc.reply_code == 404:
                        raise NotYet(f"there is no exchange {exchange!r}") from None
                    raise
        finally:
            _close(publisher)
        for queue, waiting in present.items():
            _take_probes(conn, queue, waiting + len(ids), ids, observation)
    return observation


def _look_at_queues(conn: Any, queues: list[str],
                    observation: RouteObservation) -> dict[str, int]:
    """Passive declares: queue -> ready messages, for the queues that can be read."""
    import pika.exceptions as pe

    present: dict[str, int] = {}
    for queue in queues:
        channel = conn.channel()
        try:
            ok = channel.queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                observation.missing.append(queue)
            elif exc.reply_code == 405:
                observation.notes.append(f"queue {queue!r} is exclusive to another "
                                         "connection; pass that connection to look in it")
            else:
                raise
            continue
        finally:
            _close(channel)
        present[queue] = ok.method.message_count
        if ok.method.consumer_count:
            observation.notes.append(f"queue {queue!r} has {ok.method.consumer_count} "
                                     "consumer(s), which may take probes first")
    return present


def _take_probes(conn: Any, queue: str, bound: int, ids: Mapping[str, str],
                 observation: RouteObservation) -> None:
    channel = conn.channel()
    try:
        # At most every message that was there plus every probe: a bounded loop.
        for _ in range(bound + 1):
            method, properties, _body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            label = ids.get(properties.message_id or "")
            if label is None:
                continue  # not ours: it goes back to the queue when the channel closes
            observation.received[label].add(queue)
            channel.basic_ack(method.delivery_tag)
    finally:
        _close(channel)


# -- the checks of labs 04-07 (one function, reusable with other exchanges) ------------


@check("04.ticker-bindings", "a portfolio queue bound to two stocks",
       hint=('A direct exchange delivers a message to the queues bound with exactly '
              'its routing key: how can one queue receive two different keys?',
             'Declare the portfolio queue and bind it to the stocks exchange once '
              'per stock it should receive: one binding for Stock A, another for Stock B.',
             "channel.queue_bind(queue='lab04.portfolio', exchange='lab04.stocks', "
              "routing_key='Stock A'); the same with routing_key='Stock B'"),
       params={
           "exchange": "lab04.stocks", "queue": "lab04.portfolio",
           "expected": {"Stock A": "Stock A", "Stock B": "Stock B"},
           "unexpected": {"Stock C": "Stock C", "stock a": "stock a", "": ""},
           "what": "Stock A and Stock B prices"})
@check("05.topic-bindings", "a feed of sports posts and technology posts",
       hint=('The feed did not receive a message routed with sports or technology: '
              'which binding key pattern matches every key that starts with sports, '
              'and which every key that ends with technology?',
             'Bind the feed twice: once with a pattern whose first word is sports '
              'followed by the wildcard for zero or more words, once with that '
              'wildcard followed by technology.',
             "channel.queue_bind(queue='lab05.my-feed', exchange='lab05.blog', "
              "routing_key='sports.#'); and again with routing_key='#.technology'"),
       params={
           "exchange": "lab05.blog", "queue": "lab05.my-feed",
           "expected": {"sports": "sports", "sports.football.uk": "sports.football.uk",
                        "technology": "technology", "news.technology": "news.technology"},
           "unexpected": {"news.politics": "news.politics", "esports.games": "esports.games",
                          "technology.news": "technology.news"},
           "what": "every sports post and every post ending in technology"})
@check("06.new-subscriber", "user E subscribed to the notifications",
       hint=('A fanout exchange copies every message to each queue bound to it: is '
              "user E's queue bound yet?",
             "Declare user E's queue (durable) and bind it to the notifications "
              'exchange; the routing key does not matter to a fanout exchange.',
             "channel.queue_declare(queue='lab06.user-E', durable=True); "
              "channel.queue_bind(queue='lab06.user-E', "
              "exchange='lab06.notifications')"),
       params={
           "exchange": "lab06.notifications", "queue": "lab06.user-E",
           "expected": {"alert": "alert", "empty key": "", "any key": "whatever.key"},
           "unexpected": {}, "what": "every notification, whatever its routing key"})
@check("07.express-berlin", "express parcels to Berlin, and only those",
       hint=('A headers exchange routes on header values, not on the routing key: '
              'the queue must require both the destination and the delivery method.',
             "Bind 'lab07.berlin-express' to 'lab07.logistics' with header arguments "
              'for both destination and delivery_method; which x-match value makes '
              'every one of them required?',
             "channel.queue_bind(queue='lab07.berlin-express', "
              "exchange='lab07.logistics', arguments={'x-match': 'all', "
              "'destination': 'Berlin', 'delivery_method': 'express'})"),
       params={
           "exchange": "lab07.logistics", "queue": "lab07.berlin-express",
           "expected": {"berlin express": {"destination": "Berlin",
                                           "delivery_method": "express"},
                        "berlin express, priority": {"destination": "Berlin",
                                                     "delivery_method": "express",
                                                     "priority": "high"}},
           "unexpected": {"berlin standard": {"destination": "Berlin",
                                              "delivery_method": "standard"},
                          "hamburg express": {"destination": "Hamburg",
                                              "delivery_method": "express"},
                          "berlin only": {"destination": "Berlin"}},
           "what": "parcels with destination Berlin and delivery_method express"})
def routes_as_expected(endpoints: Endpoints, exchange: str, queue: str,
                       expected: Mapping[str, MessageSpec],
                       unexpected: Mapping[str, MessageSpec], what: str) -> str:
    """``queue`` gets every ``expected`` probe and none of the ``unexpected`` ones."""
    from mqkit.grading.amqp import inspectable, queue_state

    inspectable(queue_state(endpoints, queue), queue)
    # Look in every bound queue, so that no probe is left behind in the other queues.
    seen = probe_routes(endpoints, exchange, {**expected, **unexpected},
                        [queue, *bound_queues(endpoints, exchange)])
    missed = [label for label in expected if queue not in seen.received[label]]
    extra = [label for label in unexpected if queue in seen.received[label]]
    if missed:
        raise NotYet(f"queue {queue!r} did not receive {_describe(missed[0], expected)}")
    if extra:
        raise NotYet(f"queue {queue!r} also received {_describe(extra[0], unexpected)}, "
                     "which it should not")
    return f"queue {queue!r} receives {what}, and nothing else"


def _describe(label: str, specs: Mapping[str, MessageSpec]) -> str:
    message = as_message(specs[label])
    if message.headers:
        return f"a message with headers {dict(message.headers)}"
    return f"a message with routing key {message.routing_key!r}"



# -- several queues, each with exactly its messages (labs 05-07) --------------------------


def _where(exchange: str, several: bool) -> str:
    return f" published to {exchange!r}" if several else ""


@check("05.log-routes", "log lines routed by service, component and severity",
       hint=('Each reader is one topic pattern over the words of <service>.<severity> or '
              '<service>.<component>.<severity>: which wildcard stands for any number of '
              'words, and which for exactly one?',
             "Declare the topic exchange 'lab05.logs' and the three durable queues; bind "
              'lab05.errors with a pattern whose last word is error, lab05.payment with one '
              'whose first word is payment, lab05.logins with one whose middle word of three '
              'is login.',
             "channel.queue_bind(queue='lab05.errors', exchange='lab05.logs', "
              "routing_key='#.error'); 'payment.#' for lab05.payment; '*.login.*' for "
              "lab05.logins"),
       params={
           "probes": {"lab05.logs": {
               "shop.error": "shop.error", "payment.db.error": "payment.db.error",
               "payment.info": "payment.info", "auth.login.warning": "auth.login.warning",
               "shop.login.error": "shop.login.error", "shop.info": "shop.info",
               "auth.db.warning": "auth.db.warning", "shop.errors": "shop.errors",
               "payments.info": "payments.info", "login.info": "login.info"}},
           "routes": {
               "lab05.errors": ["shop.error", "payment.db.error", "shop.login.error"],
               "lab05.payment": ["payment.db.error", "payment.info"],
               "lab05.logins": ["auth.login.warning", "shop.login.error"]},
           "what": "lab05.errors gets every error, lab05.payment everything from the "
                   "payment service, lab05.logins every line of a login component"})
@check("06.mobile-push", "a mobile push service fed by two exchanges",
       hint=('An exchange can be bound to other exchanges, and to more than one: the '
              'push queues must get every notification and every promotion, the users '
              'only the notifications.',
             "Declare a fanout exchange 'lab06.mobile' and bind it to both "
              "'lab06.notifications' and 'lab06.promotions' (exchange_bind), then declare "
              "the durable queues 'lab06.push-ios' and 'lab06.push-android' and bind them "
              "to 'lab06.mobile'.",
             "channel.exchange_declare(exchange='lab06.mobile', exchange_type='fanout', "
              "durable=True); channel.exchange_bind(destination='lab06.mobile', "
              "source='lab06.notifications'); the same with source='lab06.promotions'; "
              "for each queue: queue_declare(queue, durable=True) and "
              "queue_bind(queue, exchange='lab06.mobile')"),
       params={
           "probes": {"lab06.notifications": {"notification": "", "keyed notification": "x.y"},
                      "lab06.promotions": {"promotion": "", "keyed promotion": "sale"}},
           "routes": {
               "lab06.push-ios": ["notification", "keyed notification", "promotion",
                                  "keyed promotion"],
               "lab06.push-android": ["notification", "keyed notification", "promotion",
                                      "keyed promotion"],
               "lab06.user-A": ["notification", "keyed notification"]},
           "what": "both push queues get every notification and every promotion, the "
                   "users only the notifications"})
@check("07.lecture-routes", "the lecture's four depots: New York / Los Angeles by air / sea",
       hint=('Each depot handles one destination and one delivery method: its binding '
              'must require both headers, so a parcel that has only one of them, or '
              'another value, reaches no depot.',
             "Declare the four durable queues lab07.ny-air, lab07.ny-sea, lab07.la-air and "
              "lab07.la-sea, and bind each to 'lab07.logistics' with the arguments x-match "
              "all, its destination ('New York' or 'Los Angeles') and its delivery_method "
              "('air' or 'sea').",
             "for city, code in [('New York', 'ny'), ('Los Angeles', 'la')]: "
              "for method in ('air', 'sea'): channel.queue_declare(queue=f'lab07.{code}-"
              "{method}', durable=True); channel.queue_bind(queue=f'lab07.{code}-{method}', "
              "exchange='lab07.logistics', arguments={'x-match': 'all', "
              "'destination': city, 'delivery_method': method})"),
       params={
           "probes": {"lab07.logistics": {
               "NY air": {"destination": "New York", "delivery_method": "air"},
               "NY sea": {"destination": "New York", "delivery_method": "sea"},
               "LA air": {"destination": "Los Angeles", "delivery_method": "air"},
               "LA sea": {"destination": "Los Angeles", "delivery_method": "sea"},
               "LA sea, fragile": {"destination": "Los Angeles", "delivery_method": "sea",
                                   "fragile": "yes"},
               "NY only": {"destination": "New York"},
               "air only": {"delivery_method": "air"},
               "NY express": {"destination": "New York", "delivery_method": "express"},
               "Berlin air": {"destination": "Berlin", "delivery_method": "air"},
               "routing key only": Message("New York")}},
           "routes": {
               "lab07.ny-air": ["NY air"], "lab07.ny-sea": ["NY sea"],
               "lab07.la-air": ["LA air"], "lab07.la-sea": ["LA sea", "LA sea, fragile"]},
           "what": "each depot gets the parcels of its destination and delivery method"})
def queues_route_exactly(endpoints: Endpoints, probes: Mapping[str, Mapping[str, MessageSpec]],
                         routes: Mapping[str, list[str]], what: str) -> str:
    """Each queue of ``routes`` gets exactly its probes, of all those in ``probes``.

    Args:
        endpoints: the brokers.
        probes: exchange -> label -> message: the probes to publish (labels unique overall).
        routes: queue -> the labels it must receive; it must receive no other probe.
        what: what the queues receive, for the passing message.
    """
    from mqkit.grading.amqp import inspectable, queue_state

    for queue in routes:
        inspectable(queue_state(endpoints, queue), queue)
    received: dict[str, set[str]] = {}
    source: dict[str, str] = {}
    for exchange, messages in probes.items():
        # Look in every bound queue, so that no probe is left behind in the other queues.
        seen = probe_routes(endpoints, exchange, messages,
                            [*routes, *bound_queues(endpoints, exchange)])
        received.update(seen.received)
        source.update(dict.fromkeys(messages, exchange))
    several = len(probes) > 1
    for queue, labels in routes.items():
        for label in labels:
            if queue not in received[label]:
                specs = probes[source[label]]
                raise NotYet(f"queue {queue!r} did not receive {_describe(label, specs)}"
                             f"{_where(source[label], several)}")
        for label, queues in received.items():
            if queue in queues and label not in labels:
                specs = probes[source[label]]
                raise NotYet(f"queue {queue!r} also received {_describe(label, specs)}"
                             f"{_where(source[label], several)}, which it should not")
    return f"{what}, and no queue anything else"


# -- what a publisher did with the messages the broker returned (lab 04) -------------------


def peek_bodies(endpoints: Endpoints, queue: str) -> list[bytes] | None:
    """The bodies a queue holds (ready messages), left in place; ``None``: no such queue.

    Raises:
        NotYet: the queue is exclusive to another connection.
    """
    import pika.exceptions as pe

    with _connection(endpoints, None) as conn:
        channel = conn.channel()
        try:
            try:
                ok = channel.queue_declare(queue, passive=True)
            except pe.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return None
                if exc.reply_code == 405:
                    raise NotYet(f"queue {queue!r} is exclusive to another connection: "
                                 "declare it durable and not exclusive") from None
                raise
            bodies = []
            # Not acknowledged: everything goes back to the queue when the channel closes.
            for _ in range(ok.method.message_count + 1):
                method, _properties, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                bodies.append(body)
            return bodies
        finally:
            _close(channel)


@check("04.unroutable-parked", "returned prices parked instead of lost",
       hint=('A direct exchange silently drops a price whose key no queue is bound with, '
              'unless the publisher asks the broker to return it: catch that return and '
              'keep the price in the parking queue.',
             'In publish_or_park, publish with mandatory=True; when pika raises '
              'pika.exceptions.UnroutableError, publish the same body to the queue '
              "'lab04.unrouted' through the default exchange and return True.",
             "try: channel.basic_publish(exchange='lab04.stocks', routing_key=stock, "
              "body=body, mandatory=True) except pika.exceptions.UnroutableError: "
              "channel.basic_publish(exchange='', routing_key='lab04.unrouted', body=body); "
              "return True"),
       params={"queue": "lab04.unrouted", "unroutable": ["Stock F", "Stock G"],
               "routable": ["Stock A", "Stock B", "Stock C", "Stock D", "Stock E"]})
def parked_unroutable(endpoints: Endpoints, queue: str, unroutable: list[str],
                      routable: list[str]) -> str:
    """``queue`` holds a price for every stock in ``unroutable`` and none of ``routable``.

    A price is a message whose body is the stock's name, a space and the price
    (``b"Stock F 248.50"``); a body that is only the name counts too.
    """
    bodies = peek_bodies(endpoints, queue)
    if bodies is None:
        raise NotYet(f"there is no queue {queue!r}")
    texts = [body.decode(errors="replace").strip() for body in bodies]
    tickers = {name for name in (*unroutable, *routable)
               if any(text == name or text.startswith(f"{name} ") for text in texts)}
    for ticker in routable:
        if ticker in tickers:
            raise NotYet(f"queue {queue!r} holds a price for {ticker}, which a queue is bound "
                         "to receive: park only the prices the broker returns")
    for ticker in unroutable:
        if ticker not in tickers:
            raise NotYet(f"queue {queue!r} holds no price for {ticker}, which no queue is "
                         "bound to receive")
    return (f"queue {queue!r} holds the prices for {' and '.join(unroutable)}, which no "
            "queue was bound to receive, and no other")
