# %% [markdown]
# # Lab 02 — Queues and durability
#
# **Learning goals**
#
# - declare queues with `queue_declare` and its options: `durable`, `exclusive`,
#   `auto_delete`, `passive` and `arguments`;
# - let the broker name a queue for you;
# - choose between classic and quorum queues;
# - see for real which queues and messages survive a broker restart.
#
# **Estimated time:** 60 minutes.

# %%
import time

import pika
import pika.exceptions

import mqkit
from mqkit.grading import self_check

endpoints = mqkit.start_brokers()
# One URL, or a cluster's nodes separated by commas: pika tries them in turn.
parameters = [pika.URLParameters(url) for url in endpoints.amqp_url.split(",")]
# A pika.BlockingConnection (lab 01) with two differences: a background thread keeps it
# alive while the notebook sits idle, and after it was lost (a broker restart) its next use
# opens a new connection and re-opens its channels.
connection = mqkit.notebook_connection(endpoints, name="lab02")
channel = connection.channel()

# Start clean: remove the queues a previous run of this lab left behind.
for name in ("my_queue", "lab02.orders", "lab02.quorum", "lab02.quorum-transient",
             "lab02.scratch", "lab02.bounded", "lab02.autodelete"):
    channel.queue_delete(queue=name)

# %% [markdown]
# ## Declaring a queue
#
# The lecture's example: a queue called `my_queue` that is **durable**, i.e. the broker
# keeps its definition on disk and recreates it after a restart.

# %%
channel.queue_declare(queue='my_queue', durable=True)

# %% [markdown]
# Declaring is idempotent: declaring the same queue again with the same options is fine and
# answers with the queue's name, its ready messages and its consumers.

# %%
result = channel.queue_declare(queue='my_queue', durable=True)
print(result.method.queue, result.method.message_count, result.method.consumer_count)
# Expected output:
# my_queue 0 0

# %% [markdown]
# Declaring it again with *different* options is an error: the broker closes the channel
# with `406 PRECONDITION_FAILED`. (We use a throwaway channel, since the error closes it.)

# %%
throwaway = connection.channel()
try:
    throwaway.queue_declare(queue='my_queue', durable=False)
except pika.exceptions.ChannelClosedByBroker as error:
    print(error.reply_code, error.reply_text)
# Expected output:
# 406 PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'my_queue' in vhost '/': received 'false' but current is 'true'

# %% [markdown]
# ## `passive=True`: does it exist?
#
# A passive declare creates nothing: it answers when the queue exists, and closes the
# channel with `404 NOT_FOUND` when it does not. We wrap that in a helper for later.

# %%
def count_messages(conn, name):
    """Ready messages in queue `name`, or None when there is no such queue."""
    probe = conn.channel()
    try:
        count = probe.queue_declare(queue=name, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return None  # the broker closed the probe channel: no such queue
    probe.close()
    return count


print("my_queue:", count_messages(connection, "my_queue"))
print("no_such_queue:", count_messages(connection, "no_such_queue"))
# Expected output:
# my_queue: 0
# no_such_queue: None

# %% [markdown]
# ## Server-named, exclusive queues
#
# With `queue=''` the broker invents a unique name (`amq.gen-…`). `exclusive=True` makes the
# queue private to this connection and deletes it when the connection closes: ideal for
# temporary queues, and a re-run cell never collides with the previous run.

# %%
result = channel.queue_declare(queue='', exclusive=True)
private_queue = result.method.queue
print(private_queue)
# Expected output:
# amq.gen-NAME

# %% [markdown]
# Another connection may not touch it: `405 RESOURCE_LOCKED`.

# %%
with pika.BlockingConnection(parameters) as stranger:
    try:
        stranger.channel().queue_declare(queue=private_queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as error:
        print(error.reply_code, error.reply_text.split(" - ")[0])
# Expected output:
# 405 RESOURCE_LOCKED

# %% [markdown]
# ## `auto_delete=True`: gone with its last consumer
#
# An auto-delete queue disappears when its last consumer goes away (a queue that never had
# a consumer stays). The broker deletes it right after the consumer leaves, so we look for
# it for up to two seconds.

# %%
consumer_channel = connection.channel()
consumer_channel.queue_declare(queue='lab02.autodelete', durable=True, auto_delete=True)
tag = consumer_channel.basic_consume(queue='lab02.autodelete',
                                     on_message_callback=lambda *message: None)
print("with a consumer:", count_messages(connection, "lab02.autodelete"))
consumer_channel.basic_cancel(tag)

deadline = time.monotonic() + 2
while count_messages(connection, "lab02.autodelete") is not None:
    if time.monotonic() > deadline:
        break
    connection.sleep(0.1)
print("after the consumer left:", count_messages(connection, "lab02.autodelete"))
# Expected output:
# with a consumer: 0
# after the consumer left: None

# %% [markdown]
# ## `arguments`: optional queue features
#
# `arguments` switches on extra features, e.g. `x-max-length` (keep at most N messages,
# drop the oldest), `x-message-ttl` (expire messages) or `x-queue-type` (below).
#
# To count messages reliably right after publishing, we publish on a channel with
# *publisher confirms*: `basic_publish` then returns only once the broker has the message
# (lab 09 explains confirms).

# %%
publisher = connection.channel()
publisher.confirm_delivery()

channel.queue_declare(queue='lab02.bounded', durable=True, arguments={'x-max-length': 2})
for number in (1, 2, 3):
    publisher.basic_publish(exchange='', routing_key='lab02.bounded', body=f'message {number}')
print("messages kept:", count_messages(connection, "lab02.bounded"))
method, properties, body = channel.basic_get(queue='lab02.bounded', auto_ack=True)
print("oldest kept:", body)
# Expected output:
# messages kept: 2
# oldest kept: b'message 2'

# %% [markdown]
# ## Classic and quorum queues
#
# A **classic** queue (the default) lives on one broker node. A **quorum** queue
# (`arguments={'x-queue-type': 'quorum'}`, RabbitMQ ≥ 3.8) is replicated over the nodes of a
# cluster with the Raft consensus protocol: it is the choice for data that must not be lost
# when a node fails. The lab's broker is a single node, so here a quorum queue has one
# replica and is not replicated at all.
#
# On a cluster it is. Start a local one of three nodes with `mqkit up --nodes 3` (see
# `docs/classroom.md`, "Rehearse on a cluster") and run this lab again: the management UI's
# page of `lab02.quorum` (or the API's `members` and `online` fields) lists a member on
# each node. With one node stopped, the queue carries on with the other two (a majority) and
# keeps every message it confirmed.

# %% [markdown]
# ### Exercise 1: a quorum queue
#
# Declare the durable quorum queue `lab02.quorum` on `channel`.

# %%
### BEGIN SOLUTION
channel.queue_declare(queue='lab02.quorum', durable=True, arguments={'x-queue-type': 'quorum'})
### END SOLUTION

# %%
self_check("02.quorum-queue", endpoints)
# Expected result (solution):
# ✔ passed  02.quorum-queue: queue 'lab02.quorum' is a durable quorum queue
# Expected result (student):
# ✘ not yet  02.quorum-queue: there is no queue 'lab02.quorum' Hint: A quorum queue is a different queue type, chosen when the queue is declared: where do queue arguments go? (more: hint=2)

# %% [markdown]
# ## Durability, for real: what survives a restart?
#
# A broker restart is the test of durability. What survives it depends on three choices:
#
# - the queue's **type**: classic or quorum;
# - whether the **queue** is durable;
# - whether the **message** is *persistent* (`delivery_mode=2`) or *transient*
#   (`delivery_mode=1`, the default).
#
# We set up six cases, each a queue with one message, restart RabbitMQ once, and look again.
# You predict first.
#
# | case | queue | queue declared | message |
# |---|---|---|---|
# | classic, durable, persistent | `lab02.orders` | durable | persistent (exercises 2, 3) |
# | classic, durable, transient | `lab02.scratch` | durable | transient |
# | classic, exclusive, persistent | the `amq.gen-…` queue from above | exclusive, not durable | persistent |
# | quorum, durable, persistent | `lab02.quorum` | durable (exercise 1) | persistent (exercise 4) |
# | quorum, durable, transient | `lab02.quorum-transient` | durable (exercise 4) | transient (exercise 4) |
# | quorum, not durable | `lab02.quorum-not-durable` | not durable | — |
#
# The classic queue that is not durable is an exclusive one: a queue that is neither durable
# nor exclusive is deprecated in RabbitMQ 4 (more after the restart), so these labs never
# declare one.
#
# The lab sets up the two classic cases that are not yours:

# %%
channel.queue_declare(queue='lab02.scratch', durable=True)
publisher.basic_publish(exchange='', routing_key='lab02.scratch', body='transient note')
publisher.basic_publish(exchange='', routing_key=private_queue, body='in an exclusive queue',
                        properties=pika.BasicProperties(delivery_mode=2))

# %% [markdown]
# ### Exercise 2: a durable queue
#
# Declare the durable queue `lab02.orders` on `channel`.

# %%
### BEGIN SOLUTION
channel.queue_declare(queue='lab02.orders', durable=True)
### END SOLUTION

# %%
self_check("02.durable-queue", endpoints)
# Expected result (solution):
# ✔ passed  02.durable-queue: queue 'lab02.orders' is a durable classic queue
# Expected result (student):
# ✘ not yet  02.durable-queue: there is no queue 'lab02.orders' Hint: A queue that must outlive a broker restart has to be declared as such: which property of a queue says so? (more: hint=2)

# %% [markdown]
# ### Exercise 3: a persistent message
#
# Publish the message `order 1` to `lab02.orders` on the `publisher` channel as a
# *persistent* message: pass `properties=pika.BasicProperties(delivery_mode=2)` (or
# `pika.DeliveryMode.Persistent`).

# %%
### BEGIN SOLUTION
publisher.basic_publish(exchange='', routing_key='lab02.orders', body='order 1',
                        properties=pika.BasicProperties(delivery_mode=2))
### END SOLUTION

# %% [markdown]
# ### Exercise 4: the quorum cases
#
# Set up the two quorum cases of the table, on `channel` and `publisher`: a persistent
# message in your quorum queue `lab02.quorum`, and a new durable quorum queue
# `lab02.quorum-transient` holding one transient message.

# %%
### BEGIN SOLUTION
publisher.basic_publish(exchange='', routing_key='lab02.quorum', body='quorum, persistent',
                        properties=pika.BasicProperties(delivery_mode=2))
channel.queue_declare(queue='lab02.quorum-transient', durable=True,
                      arguments={'x-queue-type': 'quorum'})
publisher.basic_publish(exchange='', routing_key='lab02.quorum-transient',
                        body='quorum, transient', properties=pika.BasicProperties(delivery_mode=1))
### END SOLUTION

# %% [markdown]
# ### Exercise 5: predict
#
# For each case, what will the restart do? Write one of:
#
# - `'message kept'`: the queue is there and still holds its message;
# - `'message lost'`: the queue is there, but empty;
# - `'queue gone'`: the queue itself is gone;
# - `'refused'`: the broker does not even create the queue.

# %%
prediction = {
    'classic, durable, persistent': '?',
    'classic, durable, transient': '?',
    'classic, exclusive, persistent': '?',
    'quorum, durable, persistent': '?',
    'quorum, durable, transient': '?',
    'quorum, not durable': '?',
}
### BEGIN SOLUTION
prediction = {
    'classic, durable, persistent': 'message kept',
    'classic, durable, transient': 'message lost',
    'classic, exclusive, persistent': 'queue gone',
    'quorum, durable, persistent': 'message kept',
    'quorum, durable, transient': 'message kept',
    'quorum, not durable': 'refused',
}
### END SOLUTION

# %% [markdown]
# How we look: `observe` counts each case's messages with `count_messages` from above (`None`:
# no such queue), and for the last case asks for the quorum queue that is not durable, on a
# throwaway channel. `compare` prints what happened to each case next to your prediction.

# %%
CASES = {
    'classic, durable, persistent': 'lab02.orders',
    'classic, durable, transient': 'lab02.scratch',
    'classic, exclusive, persistent': private_queue,
    'quorum, durable, persistent': 'lab02.quorum',
    'quorum, durable, transient': 'lab02.quorum-transient',
    'quorum, not durable': 'lab02.quorum-not-durable',
}


def observe(conn):
    """Each case: its queue's ready messages, None (no queue), or the broker's refusal."""
    seen = {case: count_messages(conn, queue) for case, queue in CASES.items()}
    throwaway = conn.channel()
    try:
        throwaway.queue_declare(queue='lab02.quorum-not-durable', durable=False,
                                arguments={'x-queue-type': 'quorum'})
    except pika.exceptions.ChannelClosedByBroker as error:
        seen['quorum, not durable'] = f"{error.reply_code} {error.reply_text.split(' - ')[0]}"
    return seen


def fate(before, after):
    if isinstance(before, str):
        return 'refused'
    if not before:
        return 'not set up'
    if after is None:
        return 'queue gone'
    return 'message kept' if after >= before else 'message lost'


def compare(prediction, before, after):
    print(f"{'case':32}{'messages':25}{'what happened':16}you predicted")
    right = 0
    for case in CASES:
        happened, guess = fate(before[case], after[case]), prediction.get(case, '?')
        right += guess == happened
        if happened == 'refused':
            messages = before[case]  # what the broker answered
        else:
            messages = ' → '.join('no queue' if n is None else str(n)
                                  for n in (before[case], after[case]))
        print(f"{case:32}{messages:25}{happened:16}{guess} {'✔' if guess == happened else '✘'}")
    print(f"{right} of {len(CASES)} cases predicted right.")

# %% [markdown]
# Now the restart, 5–15 seconds. A restart drops every connection. A plain pika connection
# stays dead and raises on its next use; the notebook connection (`mqkit.notebook_connection`)
# notices and opens a new connection, and re-opens its channels, on its next use: `observe`
# looks through the same `connection` before and after. (With a classroom broker that mqkit
# does not run, the restart is refused and you only read along.)

# %%
before = observe(connection)
try:
    endpoints = mqkit.restart_broker("rabbitmq")
except mqkit.MQKitError as error:
    print(error)
else:
    compare(prediction, before, observe(connection))
# Expected output (solution):
# case                            messages                 what happened   you predicted
# classic, durable, persistent    1 → 1                    message kept    message kept ✔
# classic, durable, transient     1 → 0                    message lost    message lost ✔
# classic, exclusive, persistent  1 → no queue             queue gone      queue gone ✔
# quorum, durable, persistent     1 → 1                    message kept    message kept ✔
# quorum, durable, transient      1 → 1                    message kept    message kept ✔
# quorum, not durable             406 PRECONDITION_FAILED  refused         refused ✔
# 6 of 6 cases predicted right.
# Expected output (student):
# case                            messages                 what happened   you predicted
# classic, durable, persistent    no queue → no queue      not set up      ? ✘
# classic, durable, transient     1 → 0                    message lost    ? ✘
# classic, exclusive, persistent  1 → no queue             queue gone      ? ✘
# quorum, durable, persistent     no queue → no queue      not set up      ? ✘
# quorum, durable, transient      no queue → no queue      not set up      ? ✘
# quorum, not durable             406 PRECONDITION_FAILED  refused         ? ✘
# 0 of 6 cases predicted right.

# %% [markdown]
# What the restart showed:
#
# - a **durable** queue survives; an **exclusive** queue dies with its connection, and a
#   restart drops every connection;
# - in a durable *classic* queue, a **persistent** message (`delivery_mode=2`) survives, a
#   transient one (`delivery_mode=1`, the default) does not;
# - a *quorum* queue (and a stream) keeps every message, whatever its `delivery_mode`;
# - a quorum queue is always durable: asking for one that is not is refused with
#   `406 PRECONDITION_FAILED` (RabbitMQ 3.10 says `invalid property 'non-durable'`).
#
# A classic queue that is neither durable nor exclusive (*transient*) is gone after a
# restart. RabbitMQ 3.x (3.10 here) accepts it; in RabbitMQ 4.x it is a deprecated feature
# (`transient_nonexcl_queues`): Debian's RabbitMQ 4.3.6 still accepted one, but a broker can
# be configured to deny them, and then `queue_declare` fails with
# `406 PRECONDITION_FAILED` naming the feature (a notebook connection turns that into
# `mqkit.QueueRefused`). So every queue in these labs is durable or exclusive.

# %%
self_check("02.survives-restart", endpoints)
# Expected result (solution):
# ✔ passed  02.survives-restart: queue 'lab02.orders' holds a persistent message
# Expected result (student):
# ✘ not yet  02.survives-restart: there is no queue 'lab02.orders' Hint: A durable classic queue keeps its messages across a restart only if the messages themselves are marked to be written to disk: which message property is that? (more: hint=2)

# %%
self_check("02.quorum-cases", endpoints)
# Expected result (solution):
# ✔ passed  02.quorum-cases: quorum queue 'lab02.quorum' holds a persistent message, 'lab02.quorum-transient' a transient one
# Expected result (student):
# ✘ not yet  02.quorum-cases: there is no queue 'lab02.quorum' Hint: Each quorum case is a quorum queue holding one message, and the two messages differ in how they ask to be kept: which message property says that? (more: hint=2)

# %% [markdown]
# ## Summary
#
# - `queue_declare` creates a queue or confirms it exists with the same options;
#   different options give `406 PRECONDITION_FAILED`, and `passive=True` only checks.
# - `queue=''` lets the broker name the queue; `exclusive=True` ties it to one connection;
#   `auto_delete=True` removes it with its last consumer; `arguments` adds features.
# - Quorum queues are always durable (a non-durable one is refused) and replicated over a
#   cluster's nodes (one node: one replica); classic queues are the default.
# - Only a **durable** queue survives a restart. A classic queue keeps only its
#   **persistent** messages; a quorum queue keeps every message, transient ones too.
# - Transient (neither durable nor exclusive) queues are deprecated in RabbitMQ 4.x and can
#   be denied there: use durable or exclusive queues.
#
# Next: **lab 03**, publishing and consuming.
