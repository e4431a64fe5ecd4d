"""An instructor's extra (hidden) checks for labs 02 and 03, as `mqkit grade --checks` reads them.

Module-level Check objects are picked up; they are not registered, so students never see them.
"""

from mqkit.grading import Check, NotYet
from mqkit.grading.amqp import durable_queue, queue_state


def exactly_one_message(endpoints, queue):
    """The queue holds exactly one ready message (no duplicates, nothing lost)."""
    state = queue_state(endpoints, queue)
    if state is None:
        raise NotYet(f"there is no queue {queue!r}")
    if state.messages != 1:
        raise NotYet(f"queue {queue!r} holds {state.messages} messages, expected exactly 1")
    return f"queue {queue!r} holds exactly one message"


ORDERS_ONCE = Check("02.hidden-orders-once", "02", "the order was published exactly once",
                    "Publish 'order 1' once.", exactly_one_message, visible=False,
                    params={"queue": "lab02.orders"})

TASKS_DURABLE = Check("03.hidden-tasks-durable", "03", "the task queue is durable",
                      "Declare lab03.tasks with durable=True.", durable_queue, visible=False,
                      params={"queue": "lab03.tasks"})
