"""Checks of MQTT workers that a notebook keeps running: the check hands them work.

A worker answers a task published to ``<tasks>/<id>`` with a result on ``<results>/<id>``
whose payload is the worker's name. The check publishes tasks with ids of its own and
collects the results, so it sees how the broker spread the tasks over the workers: every
task done once, or some done by every worker (each has a plain subscription of its own),
or some not done at all. Under ``mqkit grade`` it runs right after its self-check cell,
while the notebook's kernel (and its workers) still run.
"""

from __future__ import annotations

import collections
import secrets
import time

from mqkit.endpoints import Endpoints
from mqkit.grading.mqtt import QUIET, TIMEOUT, _probe, _text
from mqkit.grading.registry import NotYet, check


@check("11.shared-workers", "two workers share the tasks, each task done once",
       hint=('With an ordinary subscription every subscriber gets every message: that is '
              'publish/subscribe. Which kind of MQTT 5 subscription makes the members of '
              'a group take turns, like workers on one AMQP queue?',
             'Subscribe each worker with a shared subscription: the filter '
              '$share/<group>/lab11/tasks/# with the same group name for both workers, '
              'at QoS 1. Each worker answers on lab11/results/<id> with its own name.',
             "subscribe(worker, '$share/lab11-workers/lab11/tasks/#', qos=1)"),
       points=2, params={"tasks": "lab11/tasks", "results": "lab11/results", "count": 10})
def shared_workers(endpoints: Endpoints, tasks: str, results: str, count: int) -> str:
    """``count`` tasks each get exactly one result, and more than one worker did them."""
    run = secrets.token_hex(3)
    ids = [f"{run}-{number}" for number in range(1, count + 1)]
    with _probe(endpoints, acknowledge=True) as probe:
        probe.subscribe(f"{results}/#", 1)
        for task_id in ids:
            probe.client.publish(f"{tasks}/{task_id}", task_id, qos=1).wait_for_publish(TIMEOUT)
        # Wait for a result per task, then a quiet moment more: a second result of a task
        # (two workers got it) must have its chance to arrive.
        probe.wait_until(lambda got: {m.topic for m in got} >= {f"{results}/{i}" for i in ids},
                         time.monotonic() + TIMEOUT)
        time.sleep(QUIET)
        received = [m for m in probe.messages if m.topic.rsplit("/", 1)[-1] in ids]
    done_by: dict[str, list[str]] = collections.defaultdict(list)
    for message in received:
        done_by[message.topic.rsplit("/", 1)[-1]].append(_text(message.payload))
    if not done_by:
        raise NotYet(f"no result came back for the {count} tasks published to {tasks}/<id>: "
                     f"are the workers connected, subscribed to {tasks}/#, and answering on "
                     f"{results}/<id>?")
    twice = {task: names for task, names in done_by.items() if len(names) > 1}
    if twice:
        task, names = sorted(twice.items())[0]
        raise NotYet(f"{len(twice)} of {count} tasks were done more than once (task {task!r} "
                     f"by {', '.join(sorted(names))}): every worker received every task")
    missing = [task for task in ids if task not in done_by]
    if missing:
        raise NotYet(f"{len(missing)} of {count} tasks got no result")
    workers = collections.Counter(names[0] for names in done_by.values())
    if len(workers) < 2:
        raise NotYet(f"one worker ({next(iter(workers))!r}) did all {count} tasks: start a "
                     "second worker in the same group")
    # Who did how many depends on the broker's turn order: name the workers, not the split.
    return (f"{count} tasks, each done exactly once, shared by {len(workers)} workers "
            f"({', '.join(sorted(workers))})")
