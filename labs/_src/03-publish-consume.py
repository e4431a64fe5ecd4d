# %% [markdown]
# # Lab 03 — Publish and consume
#
# **Learning goals**
#
# - publish through the default exchange with `basic_publish`;
# - consume with `basic_consume` and a callback, and stop consuming;
# - choose between automatic (`auto_ack=True`) and manual (`basic_ack`) acknowledgements,
#   and see an unacknowledged message delivered again;
# - fetch single messages with `basic_get`;
# - share work between two consumers with `basic_qos(prefetch_count=1)` (fair dispatch);
# - let urgent messages overtake with a priority queue (`x-max-priority`, `priority`), and
#   see why a prefetch larger than 1 blurs the order;
# - find and fix a worker that silently loses jobs when it dies.
#
# **Estimated time:** 45 minutes.

# %%
import threading
import time

import pika

import mqkit
from mqkit.grading import self_check

endpoints = mqkit.start_brokers()
# Like pika.BlockingConnection (lab 01), but it survives a notebook left idle for a while.
connection = mqkit.notebook_connection(endpoints, name="lab03")
channel = connection.channel()
# With publisher confirms, basic_publish returns once the broker has the message, so the
# next cell finds it in its queue (lab 09 explains confirms).
channel.confirm_delivery()

# Start clean: remove the queues a previous run of this lab left behind.
for name in ("my_queue", "lab03.tasks", "lab03.work", "lab03.live", "lab03.jobs",
             "lab03.done", "lab03.priority", "lab03.support"):
    channel.queue_delete(queue=name)

# %% [markdown]
# ## Publishing through the default exchange
#
# Every message goes to an *exchange*, which routes it to queues. The **default exchange**
# (`exchange=''`) routes a message to the queue whose name equals the routing key. The
# lecture's example:

# %%
channel.queue_declare(queue='my_queue', durable=True)
channel.basic_publish(exchange='', routing_key='my_queue', body='Hello, world!')

# %% [markdown]
# ## Consuming with a callback
#
# `basic_consume` registers a callback that the client calls for each message;
# `start_consuming()` runs the loop that delivers them. On its own, that loop never ends —
# fine for a service, not for a notebook cell. `connection.call_later(1, channel.stop_consuming)`
# stops it after one second, so the cell returns.

# %%
def callback(ch, method, properties, body):
    print("Received message:", body)


channel.basic_consume(queue='my_queue', on_message_callback=callback, auto_ack=True)
connection.call_later(1, channel.stop_consuming)
channel.start_consuming()
# Expected output:
# Received message: b'Hello, world!'

# %% [markdown]
# With `auto_ack=True` the broker forgets a message as soon as it has sent it: if the
# consumer crashes while working on it, the message is lost. The queue is empty now:

# %%
print(channel.queue_declare(queue='my_queue', passive=True).method.message_count)
# Expected output:
# 0

# %% [markdown]
# ## Watch messages move
#
# The three widgets below talk to the same broker. The **inbox** is a consumer running in
# the background, on its own connection, for the queue `lab03.live`: it shows the last
# messages and counts all of them. The **publisher** sends what its form holds: type a body,
# click *Publish*, and watch the inbox.

# %%
from mqkit.widgets import Publisher, QueueInbox, TopologyView

channel.queue_declare(queue='lab03.live', durable=True)
inbox = QueueInbox('lab03.live', endpoints)
inbox

# %%
publisher = Publisher(endpoints, routing_key='lab03.live', body='Hello from the form')
publisher

# %% [markdown]
# Code can publish too. This cell sends three messages and waits (at most five seconds)
# until the inbox has them:

# %%
for number in (1, 2, 3):
    publisher.model.publish(exchange='', routing_key='lab03.live', body=f'message {number}')
inbox.model.wait_for(3, timeout=5)
print("the inbox received", inbox.model.count, "messages")
# Expected output:
# the inbox received 3 messages

# %% [markdown]
# The topology picture is drawn from the broker's management API: exchanges on the left,
# queues on the right, with how many messages wait in each. This lab publishes through the
# default exchange `""`, which RabbitMQ binds to every queue by the queue's own name: that is
# why `routing_key='my_queue'` reaches `my_queue`. The inbox consumes as fast as messages
# come, so `lab03.live` shows 0. Click *Refresh* after publishing to redraw it.

# %%
TopologyView(endpoints, prefix=("lab03.", "my_queue"), include_default=True)

# %% [markdown]
# ## Fetching one message: `basic_get`
#
# `basic_get` asks for one message and returns at once: `(method, properties, body)`, or
# three `None`s when the queue is empty. Handy in notebooks and tests; a real consumer uses
# `basic_consume`, which does not poll.

# %%
channel.basic_publish(exchange='', routing_key='my_queue', body='Fetch me')
method, properties, body = channel.basic_get(queue='my_queue', auto_ack=True)
print(body)
print(channel.basic_get(queue='my_queue', auto_ack=True))
# Expected output:
# b'Fetch me'
# (None, None, None)

# %% [markdown]
# ## Manual acknowledgements
#
# With `auto_ack=False`, the broker keeps each delivered message as *unacknowledged* until
# the consumer calls `basic_ack`. If the channel closes first, the broker puts the message
# back in the queue and delivers it again, flagged `redelivered`.

# %%
channel.basic_publish(exchange='', routing_key='my_queue', body='Important job')

careless = connection.channel()
method, properties, body = careless.basic_get(queue='my_queue', auto_ack=False)
print("first delivery:", body, "redelivered:", method.redelivered)
careless.close()  # closed without basic_ack: the message goes back to the queue

careful = connection.channel()
method, properties, body = careful.basic_get(queue='my_queue', auto_ack=False)
print("second delivery:", body, "redelivered:", method.redelivered)
careful.basic_ack(delivery_tag=method.delivery_tag)
careful.close()
print("left in the queue:", channel.queue_declare(queue='my_queue', passive=True).method.message_count)
# Expected output:
# first delivery: b'Important job' redelivered: False
# second delivery: b'Important job' redelivered: True
# left in the queue: 0

# %% [markdown]
# ### Exercise: acknowledge every task
#
# The next cell puts three tasks in the durable queue `lab03.tasks`. The cell after it
# consumes them with `consume(..., inactivity_timeout=1)`, a generator that yields
# `(None, None, None)` after one quiet second, so the loop ends. Complete the loop so that
# each task is **acknowledged** after it is processed.

# %%
channel.queue_declare(queue='lab03.tasks', durable=True)
for number in (1, 2, 3):
    channel.basic_publish(exchange='', routing_key='lab03.tasks', body=f'task {number}')

# %%
worker = connection.channel()
done = []
for method, properties, body in worker.consume(queue='lab03.tasks', auto_ack=False,
                                               inactivity_timeout=1):
    if method is None:  # nothing arrived for one second: the queue is drained
        break
    done.append(body.decode())
    ### BEGIN SOLUTION
    worker.basic_ack(delivery_tag=method.delivery_tag)
    ### END SOLUTION
worker.cancel()
worker.close()
print("processed:", done)
# Expected output:
# processed: ['task 1', 'task 2', 'task 3']

# %%
self_check("03.all-acked", endpoints)
# Expected result (solution):
# ✔ passed  03.all-acked: queue 'lab03.tasks' is empty: every message was acknowledged
# Expected result (student):
# ✘ not yet  03.all-acked: 3 messages went back to queue 'lab03.tasks' Hint: Messages went back to the queue or still wait there: a consumer that takes a message must also tell the broker it is done with it. (more: hint=2)

# %% [markdown]
# ## Work queues: two consumers, fair dispatch
#
# Several consumers on one queue share its messages: a *work queue*. By default the broker
# hands them out in turn (round robin), regardless of how busy each consumer is.
#
# We simulate two workers on their own channels: worker **A** is slow — it is still busy
# with its first task and acknowledges nothing — while worker **B** acknowledges at once.
# Six tasks arrive once both are listening.

# %%
def run_workers(prefetch_count):
    """Six tasks, a slow worker A and a fast worker B; return who got which task."""
    channel.queue_declare(queue='lab03.work', durable=True)
    received = {"A": [], "B": []}
    worker_a, worker_b = connection.channel(), connection.channel()
    if prefetch_count:
        worker_a.basic_qos(prefetch_count=prefetch_count)
        worker_b.basic_qos(prefetch_count=prefetch_count)

    def slow(ch, method, properties, body):
        received["A"].append(body.decode())  # still busy: no ack yet

    def fast(ch, method, properties, body):
        received["B"].append(body.decode())
        ch.basic_ack(delivery_tag=method.delivery_tag)

    worker_a.basic_consume(queue='lab03.work', on_message_callback=slow)
    worker_b.basic_consume(queue='lab03.work', on_message_callback=fast)
    for number in range(1, 7):
        channel.basic_publish(exchange='', routing_key='lab03.work', body=str(number))
    # Deliver until all six tasks are out (at most five seconds).
    deadline = time.monotonic() + 5
    while len(received["A"]) + len(received["B"]) < 6 and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.1)
    worker_a.close()  # A's unacknowledged tasks return to the queue...
    worker_b.close()
    channel.queue_purge(queue='lab03.work')  # ...and we drop them for the next run
    return received


print("round robin:", run_workers(prefetch_count=0))
# Expected output:
# round robin: {'A': ['1', '3', '5'], 'B': ['2', '4', '6']}

# %% [markdown]
# Round robin gave the busy worker A half of the tasks, which now wait behind its first one.
# `basic_qos(prefetch_count=1)` tells the broker: *at most one unacknowledged message per
# consumer*. A busy worker then gets nothing new, and the free one takes the rest —
# **fair dispatch**.

# %%
print("prefetch 1: ", run_workers(prefetch_count=1))
# Expected output:
# prefetch 1:  {'A': ['1'], 'B': ['2', '3', '4', '5', '6']}

# %% [markdown]
# ## Priority queues: urgent messages first
#
# A queue delivers in arrival order. A **priority queue** delivers the message with the
# highest priority first, and keeps arrival order among messages of equal priority. A queue
# becomes one when it is *declared* with the argument `x-max-priority`, the highest priority
# it distinguishes (RabbitMQ 3.10.8 accepts up to 255 and refuses 256 with
# `406 PRECONDITION_FAILED`; a few levels are usually enough); each message then carries its
# priority in its properties: `pika.BasicProperties(priority=...)`.
#
# Five messages wait in `lab03.priority` before anyone consumes: the consumer gets the
# highest priority first. A message without a priority counts as priority 0.

# %%
channel.queue_declare(queue='lab03.priority', durable=True, arguments={'x-max-priority': 10})
for body, priority in [('low 1', 1), ('high 1', 9), ('none', None), ('medium', 5),
                       ('high 2', 9)]:
    channel.basic_publish(exchange='', routing_key='lab03.priority', body=body,
                          properties=pika.BasicProperties(priority=priority))

reader = connection.channel()
for method, properties, body in reader.consume(queue='lab03.priority', auto_ack=True,
                                               inactivity_timeout=0.5):
    if method is None:
        break
    print(body.decode(), "priority", properties.priority)
reader.close()
# Expected output:
# high 1 priority 9
# high 2 priority 9
# medium priority 5
# low 1 priority 1
# none priority None

# %% [markdown]
# ### Why a prefetch larger than 1 blurs the order
#
# The broker can only reorder what is still *in the queue*. Whatever it has already sent to a
# consumer — up to `prefetch_count` unacknowledged messages — sits in the consumer's buffer
# and is worked off in the order it came. So an urgent message that arrives while the
# consumer is busy waits behind everything that consumer has already taken.
#
# A printer works through five reports (priority 1). While it prints the first one, an
# URGENT job (priority 9) arrives. Who is printed when, for prefetch 1, 3 and no limit (0)?

# %%
def printer(prefetch_count):
    """Five reports wait; an URGENT job arrives during the first; return the print order."""
    for number in range(1, 6):
        channel.basic_publish(exchange='', routing_key='lab03.priority', body=f'report {number}',
                              properties=pika.BasicProperties(priority=1))
    busy = connection.channel()
    if prefetch_count:
        busy.basic_qos(prefetch_count=prefetch_count)
    printed = []
    for method, properties, body in busy.consume(queue='lab03.priority', inactivity_timeout=0.5):
        if method is None:
            break
        if not printed:  # the printer is busy with its first job
            channel.basic_publish(exchange='', routing_key='lab03.priority', body='URGENT',
                                  properties=pika.BasicProperties(priority=9))
        printed.append(body.decode())
        busy.basic_ack(delivery_tag=method.delivery_tag)
    busy.cancel()
    busy.close()
    return printed


for prefetch_count in (1, 3, 0):
    print(f"prefetch {prefetch_count}:", printer(prefetch_count))
# Expected output:
# prefetch 1: ['report 1', 'URGENT', 'report 2', 'report 3', 'report 4', 'report 5']
# prefetch 3: ['report 1', 'report 2', 'report 3', 'URGENT', 'report 4', 'report 5']
# prefetch 0: ['report 1', 'report 2', 'report 3', 'report 4', 'report 5', 'URGENT']

# %% [markdown]
# With prefetch 1 the printer held only the report it was printing, so the URGENT job was
# next. With prefetch 3 it held three reports when the URGENT job came; with no limit it held
# all five, and priority changed nothing. (Run on RabbitMQ 3.10.8, this order is the same
# every time: the broker sends a consumer its prefetch as soon as it starts consuming.)
# Priorities pay off with a small prefetch — the same `prefetch_count=1` that gave fair
# dispatch above.
#
# ### Exercise: urgent tickets first
#
# A support desk puts its tickets in the durable queue `lab03.support`; agents take them one
# at a time (prefetch 1). The desk wants **urgent** tickets answered first, then **normal**,
# then **low**, and among equals the older ticket first. Today the queue is a plain one and
# the tickets come out in arrival order.
#
# Change the next cell so that `lab03.support` is a priority queue and each ticket is
# published with a priority that matches its level. The cell deletes the queue first, so you
# can run it again after each change: a queue's arguments are fixed when it is declared, and
# declaring an existing queue with other arguments fails with `406 PRECONDITION_FAILED`.

# %%
TICKETS = [('printer jammed', 'low'), ('invoice 17 wrong', 'normal'),
           ('server down', 'urgent'), ('new mouse', 'low'), ('refund 42', 'normal'),
           ('disk full', 'urgent')]

channel.queue_delete(queue='lab03.support')
### BEGIN SOLUTION
channel.queue_declare(queue='lab03.support', durable=True, arguments={'x-max-priority': 3})
LEVELS = {'low': 1, 'normal': 2, 'urgent': 3}
# STUB: channel.queue_declare(queue='lab03.support', durable=True)
### END SOLUTION
for ticket, level in TICKETS:
    ### BEGIN SOLUTION
    channel.basic_publish(exchange='', routing_key='lab03.support', body=ticket,
                          properties=pika.BasicProperties(priority=LEVELS[level]))
    # STUB: channel.basic_publish(exchange='', routing_key='lab03.support', body=ticket)
    ### END SOLUTION

# %% [markdown]
# The self-check looks at the queue on the broker: is it a priority queue, does it hold the
# six tickets, and in which order would an agent get them? (It takes them without
# acknowledging and lets them go back, so they stay in the queue.)

# %%
self_check("03.priority-order", endpoints)
# Expected result (solution):
# ✔ passed  03.priority-order: priority queue 'lab03.support' hands an agent the 6 tickets urgent, then normal, then low, the oldest first among equals
# Expected result (student):
# ✘ not yet  03.priority-order: queue 'lab03.support' is not a priority queue: it was declared without x-max-priority, so it delivers in arrival order Hint: A queue reorders messages only if it was declared to, and only by a number that each message carries: which queue argument and which message property are those? (more: hint=2)

# %% [markdown]
# An agent with prefetch 1 takes the tickets:

# %%
agent = connection.channel()
agent.basic_qos(prefetch_count=1)
for method, properties, body in agent.consume(queue='lab03.support', inactivity_timeout=0.5):
    if method is None:
        break
    print("answering:", body.decode(), "- priority", properties.priority)
    agent.basic_ack(delivery_tag=method.delivery_tag)
agent.cancel()
agent.close()
# Expected output (solution):
# answering: server down - priority 3
# answering: disk full - priority 3
# answering: invoice 17 wrong - priority 2
# answering: refund 42 - priority 2
# answering: printer jammed - priority 1
# answering: new mouse - priority 1
# Expected output (student):
# answering: printer jammed - priority None
# answering: invoice 17 wrong - priority None
# answering: server down - priority None
# answering: new mouse - priority None
# answering: refund 42 - priority None
# answering: disk full - priority None

# %% [markdown]
# ## Bug hunt: a worker that loses jobs
#
# A real worker runs on its own, in the background. Here it is a thread with a connection of
# its own (pika connections must not be shared between threads), named `lab03-worker`: the
# management UI lists connections by that name. The worker takes jobs from the durable queue
# `lab03.jobs` and hands each to `handle`, which works on it for 50 ms and publishes one
# result to `lab03.done`. *How* it takes jobs is a function you pass in: `take_jobs(ch, worker)`.
#
# To test what happens when a worker dies, `crash_after=4` makes `handle` raise on the fifth
# job, as a bug or a killed process would. The thread then closes its connection, as the
# operating system does for a process that dies. `mqkit.register_worker` records the worker:
# creating a new one stops the one before.

# %%
channel.queue_declare(queue='lab03.jobs', durable=True)
channel.queue_declare(queue='lab03.done', durable=True)


class Worker:
    def __init__(self, take_jobs, crash_after=None):
        self.take_jobs, self.crash_after = take_jobs, crash_after
        self.handled, self.error = 0, None
        self.stopping = threading.Event()
        mqkit.register_worker('lab03.worker', self)  # stops the worker started before
        self.thread = threading.Thread(target=self._run, name='lab03-worker', daemon=True)
        self.thread.start()

    def handle(self, ch, body):
        """The work on one job: 50 ms, then its result goes to lab03.done."""
        if self.handled == self.crash_after:
            raise RuntimeError(f'the worker crashed on job {self.handled + 1}')
        time.sleep(0.05)
        ch.basic_publish(exchange='', routing_key='lab03.done', body=b'done: ' + body)
        self.handled += 1

    def _run(self):
        worker_connection = None
        try:
            worker_connection = mqkit.amqp_connection(endpoints, name='lab03-worker')
            self.take_jobs(worker_connection.channel(), self)
        except Exception as exc:  # kept in worker.error: a thread must not write into cells
            self.error = exc
        finally:  # a process that dies loses its connection: so does this thread
            if worker_connection is not None and worker_connection.is_open:
                worker_connection.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)

# %% [markdown]
# A crash test: put 20 jobs in the queue, start a worker that crashes on its fifth job, wait
# for it to die, and count what is left.

# %%
def crash_test(take_jobs):
    channel.queue_purge(queue='lab03.jobs')
    channel.queue_purge(queue='lab03.done')
    for number in range(1, 21):
        channel.basic_publish(exchange='', routing_key='lab03.jobs', body=f'job {number}')
    crashing = Worker(take_jobs, crash_after=4)
    crashing.thread.join(timeout=10)
    results = channel.queue_declare(queue='lab03.done', passive=True).method.message_count
    waiting = channel.queue_declare(queue='lab03.jobs', passive=True).method.message_count
    print("the worker:", crashing.error)
    print(f"results: {results}, jobs waiting: {waiting}, lost: {20 - results - waiting}")

# %% [markdown]
# A colleague wrote this loop for the worker. It does every job, as long as nothing goes wrong.
# Watch what a crash on the fifth job leaves behind:

# %%
def first_draft(ch, worker):
    for method, properties, body in ch.consume('lab03.jobs', auto_ack=True,
                                               inactivity_timeout=0.1):
        if worker.stopping.is_set():
            break
        if method is not None:  # None: nothing arrived for 0.1 s
            worker.handle(ch, body)


crash_test(first_draft)
# Expected output:
# the worker: the worker crashed on job 5
# results: 4, jobs waiting: 0, lost: 16

# %% [markdown]
# Four jobs have results, and 16 are neither done nor waiting in the queue: nobody will ever
# do them, and nothing reported an error about them.
#
# ### Exercise: find the bug and fix it
#
# Where did the 16 jobs go? Write `take_jobs`, a version of the loop that loses nothing when
# the worker dies: every job must end up with a result in `lab03.done`, or back in
# `lab03.jobs` for the next worker. (Until you do, `take_jobs` runs the first draft.)

# %%
def take_jobs(ch, worker):
    ### BEGIN SOLUTION
    ch.basic_qos(prefetch_count=1)
    for method, properties, body in ch.consume('lab03.jobs', inactivity_timeout=0.1):
        if worker.stopping.is_set():
            break
        if method is not None:
            worker.handle(ch, body)
            ch.basic_ack(method.delivery_tag)
    # STUB: first_draft(ch, worker)
    ### END SOLUTION


crash_test(take_jobs)
# Expected output (solution):
# the worker: the worker crashed on job 5
# results: 4, jobs waiting: 16, lost: 0
# Expected output (student):
# the worker: the worker crashed on job 5
# results: 4, jobs waiting: 0, lost: 16

# %% [markdown]
# A crash at a known job is the easy case. A worker can also die *anywhere*: between
# receiving a job and publishing its result, or between publishing and acknowledging. The
# next cell starts a worker with your loop that keeps running. The self-check after it gives
# it 40 jobs and, once the first results arrive, closes the worker's connection through the
# management API (as a crash would), then counts: each job must have a result or wait in the
# queue again. Run both cells again after each change.

# %%
worker = Worker(take_jobs)

# %%
self_check("03.no-loss-on-crash", endpoints)
# Expected result (solution):
# ✔ passed  03.no-loss-on-crash: the worker was killed mid-stream and no job was lost: each of the 40 jobs has a result in 'lab03.done' or waits in 'lab03.jobs' again
# Expected result (student):
# ✘ not yet  03.no-loss-on-crash: jobs were lost when the worker was killed mid-stream: fewer than the 40 jobs published have a result in 'lab03.done' or wait in 'lab03.jobs' again Hint: A job is safe only while the broker still holds it: when does your worker let the broker forget a job, and how many jobs does the broker hand it at once? (more: hint=2)

# %% [markdown]
# The check stopped the worker: `worker.error` says how. Once it passes, think about a
# worker that dies after publishing a result but before acknowledging its job: what happens
# to that job, and what must whoever reads `lab03.done` be ready for?

# %% [markdown]
# ## Summary
#
# - `basic_publish(exchange='', routing_key=queue, body=...)` delivers straight to a queue
#   through the default exchange.
# - `basic_consume` + a callback + `start_consuming()` is a consumer; in a notebook, bound
#   it (`call_later(…, stop_consuming)`, or `consume(…, inactivity_timeout=…)`).
# - `auto_ack=True` forgets messages on delivery; with manual `basic_ack`, an unacknowledged
#   message goes back to the queue when its channel closes and is redelivered.
# - `basic_get` fetches one message or nothing.
# - Work queues share messages round robin; `basic_qos(prefetch_count=1)` gives fair
#   dispatch to the workers that are free.
# - A queue declared with `x-max-priority` delivers higher `priority` first (arrival order
#   among equals); it can reorder only what it still holds, so keep the prefetch small.
# - A worker that must not lose jobs acknowledges each one after its work (and its result)
#   is done: whatever it held when it died goes back to the queue.
#
# Next: **lab 04**, the direct exchange.
