"""An instructor's extra (hidden) checks for labs 02 and 03, as `mqkit grade --checks` reads them.

Both forms are used: a function decorated with `check`, and a module-level Check object. The
grader loads the file inside a collecting registry, so neither reaches the checks students see.
"""

from mqkit.grading import Check, NotYet, check
from mqkit.grading.amqp import durable_queue, queue_state


@check("02.hidden-orders-once", "the order was published exactly once",
       hint="Publish 'order 1' once.", visible=False, params={"queue": "lab02.orders"})
def exactly_one_message(endpoints, queue):
    """The queue holds exactly one ready message (no duplicates, nothing lost)."""
    state = queue_state(endpoints, queue)
    if state is None:
        raise NotYet(f"there is no queue {queue!r}")
    if state.messages != 1:
        raise NotYet(f"queue {queue!r} holds {state.messages} messages, expected exactly 1")
    return f"queue {queue!r} holds exactly one message"


TASKS_DURABLE = Check("03.hidden-tasks-durable", "the task queue is durable",
                      "Declare lab03.tasks with durable=True.", durable_queue, visible=False,
                      params={"queue": "lab03.tasks"})
