"""The exercise checks of labs 04-07 against the real RabbitMQ: a right setup passes, wrong
ones say "not yet" with what is missing.

Every check runs on names of its own (the registered lab names with a unique suffix), so
these tests share the session's brokers safely.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from mqkit import clients
from mqkit.grading import get_check

pytestmark = pytest.mark.integration


@pytest.fixture
def channel(brokers):
    connection = clients.amqp_connection(brokers, name="test-exchange-exercises")
    channel = connection.channel()
    channel.confirm_delivery()
    yield channel
    connection.close()


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """``value`` (check params) with every lab name in it replaced by its unique name."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {_renamed(k, names): _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value  # a Message: its routing key is not a name


class Lab:
    """A check's params with unique names, and the objects made for it (removed at the end)."""

    def __init__(self, endpoints, channel, check_id: str, names: list[str]) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.endpoints, self.channel, self.check = endpoints, channel, get_check(check_id)
        self.names = {name: f"{name}-{suffix}" for name in names}
        self.params = _renamed(self.check.params, self.names)
        self.queues: set[str] = set()
        self.exchanges: set[str] = set()

    def __getitem__(self, name: str) -> str:
        return self.names[name]

    def run(self):
        return self.check.run(self.endpoints, **self.params)

    def exchange(self, name: str, kind: str) -> None:
        self.exchanges.add(self[name])
        self.channel.exchange_declare(self[name], kind, durable=True)

    def queue(self, name: str, exchange: str | None = None, key: str = "",
              arguments: dict | None = None) -> None:
        self.queues.add(self[name])
        self.channel.queue_declare(self[name], durable=True)
        if exchange:
            self.channel.queue_bind(self[name], self[exchange], routing_key=key,
                                    arguments=arguments)

    def unbind_all(self) -> None:
        """Delete the queues (and their bindings), keep the exchanges."""
        for queue in self.queues:
            self.channel.queue_delete(queue)
        self.queues.clear()

    def remove(self) -> None:
        self.unbind_all()
        for exchange in self.exchanges:
            self.channel.exchange_delete(exchange)


@pytest.fixture
def make_lab(brokers, channel):
    made: list[Lab] = []

    def make(check_id: str, names: list[str]) -> Lab:
        lab = Lab(brokers, channel, check_id, names)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        lab.remove()


# -- 04.unroutable-parked: what the student's publish_or_park left in lab04.unrouted -------


def _parked(lab: Lab, *bodies: bytes):
    lab.unbind_all()
    lab.queue("lab04.unrouted")
    for body in bodies:
        lab.channel.basic_publish("", lab["lab04.unrouted"], body)
    return lab.run()


def test_parked_prices_pass_only_when_exactly_the_returned_ones_are_kept(make_lab) -> None:
    lab = make_lab("04.unroutable-parked", ["lab04.unrouted"])
    absent = lab.run()
    assert absent.status.value == "failed"
    assert absent.message == f"there is no queue {lab['lab04.unrouted']!r}"
    empty = _parked(lab)
    assert empty.status.value == "failed"
    assert "holds no price for Stock F" in empty.message
    assert empty.hint
    one = _parked(lab, b"Stock F 248.50")
    assert "holds no price for Stock G" in one.message, one.line()
    too_many = _parked(lab, b"Stock F 248.50", b"Stock A 191.20", b"Stock G 880.00")
    assert too_many.status.value == "failed"
    assert "holds a price for Stock A" in too_many.message, too_many.line()
    # The stock is the body's start: 'Stock A' is not found inside another stock's price.
    near = _parked(lab, b"Stock F 248.50", b"Stock G 880.00", b"Stock AB 1.00")
    assert near.is_passed, near.line()
    right = _parked(lab, b"Stock F 248.50", b"Stock G 880.00", b"Stock F 249.00")
    assert right.is_passed, right.line()
    # the check only looked: the student's messages are all still there
    assert lab.channel.queue_declare(lab["lab04.unrouted"],
                                     passive=True).method.message_count == 3


def test_a_publish_or_park_function_passes_on_the_real_broker(make_lab) -> None:
    """The lab's solution, run against the broker, leaves what the check wants."""
    import pika

    stocks = ["Stock A", "Stock B", "Stock C", "Stock D", "Stock E"]
    queues = {stock: "lab04.stock-" + stock[-1] for stock in stocks}
    lab = make_lab("04.unroutable-parked", ["lab04.unrouted", "lab04.stocks",
                                            *queues.values()])
    lab.exchange("lab04.stocks", "direct")
    for stock in stocks:
        lab.queue(queues[stock], "lab04.stocks", stock)
    lab.queue("lab04.unrouted")
    channel = lab.channel

    def publish_or_park(stock: str, price: str) -> bool:
        body = f"{stock} {price}"
        try:
            channel.basic_publish(lab["lab04.stocks"], stock, body, mandatory=True)
        except pika.exceptions.UnroutableError:
            channel.basic_publish("", lab["lab04.unrouted"], body)
            return True
        return False

    batch = [("Stock A", "191.20"), ("Stock F", "248.50"), ("Stock B", "412.00"),
             ("Stock G", "880.00"), ("Stock C", "142.10")]
    assert [s for s, p in batch if publish_or_park(s, p)] == ["Stock F", "Stock G"]
    assert lab.run().is_passed


# -- the checks where several queues must each get exactly their probes (05, 06, 07) --------


def _logs(lab: Lab, errors: str = "#.error", payment: str = "payment.#",
          logins: str = "*.login.*") -> None:
    lab.unbind_all()
    lab.exchange("lab05.logs", "topic")
    lab.queue("lab05.errors", "lab05.logs", errors)
    lab.queue("lab05.payment", "lab05.logs", payment)
    lab.queue("lab05.logins", "lab05.logs", logins)


def _mobile(lab: Lab, sources: tuple[str, ...] = ("lab06.notifications", "lab06.promotions"),
            promotions_to_users: bool = False) -> None:
    lab.unbind_all()
    for name in ("lab06.notifications", "lab06.promotions", "lab06.mobile"):
        lab.exchange(name, "fanout")
    lab.queue("lab06.user-A", "lab06.notifications")
    for source in ("lab06.notifications", "lab06.promotions"):
        lab.channel.exchange_unbind(destination=lab["lab06.mobile"], source=lab[source])
    lab.channel.exchange_unbind(destination=lab["lab06.notifications"],
                                source=lab["lab06.promotions"])
    for source in sources:
        lab.channel.exchange_bind(destination=lab["lab06.mobile"], source=lab[source])
    if promotions_to_users:
        lab.channel.exchange_bind(destination=lab["lab06.notifications"],
                                  source=lab["lab06.promotions"])
    lab.queue("lab06.push-ios", "lab06.mobile")
    lab.queue("lab06.push-android", "lab06.mobile")


DEPOTS = {"lab07.ny-air": ("New York", "air"), "lab07.ny-sea": ("New York", "sea"),
          "lab07.la-air": ("Los Angeles", "air"), "lab07.la-sea": ("Los Angeles", "sea")}


def _depots(lab: Lab, match: str = "all", skip: str = "", only_city: str = "") -> None:
    lab.unbind_all()
    lab.exchange("lab07.logistics", "headers")
    for queue, (city, method) in DEPOTS.items():
        if queue == skip:
            continue
        arguments = {"x-match": match, "destination": city, "delivery_method": method}
        if queue == only_city:
            del arguments["delivery_method"]
        lab.queue(queue, "lab07.logistics", arguments=arguments)


#: check id -> (names, the right setup, [(a wrong setup, what the verdict must say)]).
CASES: dict[str, tuple[list[str], Callable[[Lab], None],
                       list[tuple[Callable[[Lab], None], str]]]] = {
    "05.log-routes": (
        ["lab05.logs", "lab05.errors", "lab05.payment", "lab05.logins"], _logs, [
            (lambda lab: _logs(lab, errors="*.error"),
             "'lab05.errors-{}' did not receive a message with routing key 'payment.db.error'"),
            (lambda lab: _logs(lab, payment="payment.*"),
             "'lab05.payment-{}' did not receive a message with routing key 'payment.db.error'"),
            (lambda lab: _logs(lab, logins="#.login.#"),
             "'lab05.logins-{}' also received a message with routing key 'login.info'"),
            (lambda lab: _logs(lab, errors="#"),
             "'lab05.errors-{}' also received a message with routing key 'payment.info'"),
        ]),
    "06.mobile-push": (
        ["lab06.notifications", "lab06.promotions", "lab06.mobile", "lab06.user-A",
         "lab06.push-ios", "lab06.push-android"], _mobile, [
            (lambda lab: _mobile(lab, sources=("lab06.notifications",)),
             "did not receive a message with routing key '' published to "
             "'lab06.promotions-{}'"),
            (lambda lab: _mobile(lab, sources=("lab06.notifications",),
                                 promotions_to_users=True),
             "'lab06.user-A-{}' also received a message with routing key '' published to "
             "'lab06.promotions-{}'"),
        ]),
    "07.lecture-routes": (
        ["lab07.logistics", *DEPOTS], _depots, [
            (lambda lab: _depots(lab, match="any"), "also received a message with headers"),
            (lambda lab: _depots(lab, only_city="lab07.ny-sea"),
             "'lab07.ny-sea-{}' also received a message with headers "
             "{{'destination': 'New York', 'delivery_method': 'air'}}"),
            (lambda lab: _depots(lab, skip="lab07.la-sea"), "there is no queue 'lab07.la-sea-{}'"),
        ]),
}


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_route_checks_pass_and_fail_on_the_real_broker(make_lab, check_id) -> None:
    names, right, wrongs = CASES[check_id]
    lab = make_lab(check_id, names)
    suffix = lab[names[0]].rsplit("-", 1)[1]
    first_queue = next(iter(lab.params["routes"]))
    absent = lab.run()
    assert absent.status.value == "failed"
    assert absent.message.startswith("there is no queue") or "no exchange" in absent.message
    for wrong, says in wrongs:
        wrong(lab)
        verdict = lab.run()
        assert verdict.status.value == "failed", (says, verdict.line())
        assert says.format(suffix, suffix) in verdict.message, verdict.line()
        assert verdict.hint
    right(lab)
    lab.channel.basic_publish("", first_queue, b"kept")
    verdict = lab.run()
    assert verdict.is_passed, verdict.line()
    # the probes are gone from every queue, the student's message stays
    counts = {queue: lab.channel.queue_declare(queue, passive=True).method.message_count
              for queue in lab.queues}
    assert counts == {queue: int(queue == first_queue) for queue in lab.queues}

