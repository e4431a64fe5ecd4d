# %% [markdown]
# # Lab 08 — Request/reply over a second queue (RPC)
#
# **Learning goals**
#
# - simulate a synchronous call with two queues: requests go to a queue the server
#   consumes, answers come back on a *reply queue* named in `reply_to`;
# - match answers to requests with `correlation_id`;
# - use an exclusive reply queue, then RabbitMQ's *direct reply-to*
#   (`amq.rabbitmq.reply-to`), which needs no queue at all;
# - give the client a timeout, and see what happens when the server is down, slow, or
#   answers twice;
# - let several servers share one request queue;
# - watch a *poison message* kill every server it reaches, read the crash, and fix the
#   server so it answers such a request with an error and drops it.
#
# **Estimated time:** 30 minutes.

# %%
import threading
import time
import traceback
import uuid

import pika

import mqkit
from mqkit import amqp_connection, register_worker
from mqkit.grading import self_check

endpoints = mqkit.start_brokers()
connection = mqkit.notebook_connection(endpoints, name="lab08")
channel = connection.channel()
# Start clean: the request queue of a previous run may still hold requests.
channel.queue_delete(queue='lab08.requests')
channel.queue_declare(queue='lab08.requests', durable=True)

# %% [markdown]
# ## The idea
#
# Messaging is asynchronous: a publisher never waits for a consumer. A *call* waits for an
# answer. The lecture's trick: a second queue. The client
#
# 1. publishes a request to `lab08.requests`, with two properties: `reply_to` (where to
#    answer) and `correlation_id` (a fresh id for this request);
# 2. waits on its reply queue for a message carrying the same `correlation_id`.
#
# The server consumes `lab08.requests`, computes, publishes the answer to the queue named in
# `reply_to` (through the default exchange) with the request's `correlation_id`, then acks
# the request.

# %% [markdown]
# ## The server's answer (exercise)
#
# Complete `answer`: publish `response` through the default exchange to the queue named in
# `properties.reply_to`, with `pika.BasicProperties(correlation_id=properties.correlation_id,
# headers={'server': server_name})`.

# %%
def answer(channel, properties, response, server_name):
    ### BEGIN SOLUTION
    channel.basic_publish(
        exchange='',
        routing_key=properties.reply_to,
        properties=pika.BasicProperties(correlation_id=properties.correlation_id,
                                        headers={'server': server_name}),
        body=response)
    ### END SOLUTION


# %% [markdown]
# ## The server, in the background
#
# The server runs in a thread with a connection of its own (pika connections must not be
# shared between threads). For each request it calls a *handler*, by default
# `handle_request`: compute the Fibonacci number of the request's body, answer (once, or
# more than once with `answers`), then ack. It can also be slow (`delay`).
# `mqkit.register_worker` puts it in mqkit's registry: re-running the cell stops the old
# server with the same name, and `stop()` ends it cleanly — a request it has not acked goes
# back to the queue.
#
# A thread must not print into the notebook (its text would land in whatever cell runs at
# that moment). So when the handler raises, the server records the error and the
# traceback, closes its connection — as the operating system does for a crashed process —
# and stops. `server.status()` says in one line whether it runs or how it crashed;
# `server.traceback` holds the whole story.

# %%
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def handle_request(ch, method, properties, body, server):
    response = str(fib(int(body))).encode()
    for _ in range(server.answers):  # 1; 2 for a buggy server that answers twice
        answer(ch, properties, response, server.name)
    ch.basic_ack(delivery_tag=method.delivery_tag)


class RPCServer:
    def __init__(self, name, delay=0.0, answers=1, handler=None, queue='lab08.requests'):
        self.name, self.delay, self.answers, self.queue = name, delay, answers, queue
        self.handler = handler or handle_request
        self.handled, self.request, self.redelivered = 0, None, None
        self.error, self.traceback = None, None
        self.stopping, self.ready = threading.Event(), threading.Event()
        register_worker(f"lab08.{name}", self)  # stops an older server of the same name
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self):
        server = None
        try:
            server = amqp_connection(endpoints, name=self.name)
            ch = server.channel()
            ch.basic_qos(prefetch_count=1)  # one request at a time per server
            for method, properties, body in ch.consume(self.queue, inactivity_timeout=0.1):
                self.ready.set()
                if self.stopping.is_set():
                    break
                if method is None:
                    continue
                self.request, self.redelivered = body, method.redelivered
                self.stopping.wait(self.delay)  # a slow server (0 s: a fast one)
                if self.stopping.is_set():
                    break  # not acked: the request goes back to the queue
                self.handler(ch, method, properties, body, self)
                self.handled += 1
        except Exception as exc:  # the server crashes: recorded, shown by status()
            self.error, self.traceback = exc, traceback.format_exc()
        finally:
            self.ready.set()
            if server is not None and server.is_open:
                server.close()  # unacked requests go back to the queue

    def status(self):
        if self.error is not None:
            return (f"{self.name}: crashed on request {self.request!r} -> "
                    f"{type(self.error).__name__}: {self.error}")
        state = "running" if self.thread.is_alive() else "stopped"
        return f"{self.name}: {state}, {self.handled} requests handled"

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)


server = RPCServer("server-1")
print(server.status())
# Expected output:
# server-1: running, 0 requests handled

# %% [markdown]
# ## The client, with an exclusive reply queue
#
# The client declares a server-named, **exclusive** reply queue: only this connection may
# use it, and it disappears with the connection. It consumes from it *before* sending, and
# `call` waits — at most `timeout` seconds — for the answer whose `correlation_id` matches.
# Any other answer is *stale* (a late or repeated one) and ignored.

# %%
class RPCClient:
    def __init__(self, connection, reply_to=None):
        self.connection = connection
        self.channel = connection.channel()
        if reply_to is None:
            reply_to = self.channel.queue_declare(queue='', exclusive=True).method.queue
        self.reply_to = reply_to
        self.channel.basic_consume(queue=reply_to, on_message_callback=self._on_reply,
                                   auto_ack=True)
        self.pending, self.replies, self.stale = set(), {}, 0

    def _on_reply(self, ch, method, properties, body):
        if properties.correlation_id in self.pending:
            self.pending.discard(properties.correlation_id)
            self.replies[properties.correlation_id] = (body, properties.headers or {})
        else:
            self.stale += 1

    def send(self, request):
        correlation_id = str(uuid.uuid4())
        self.pending.add(correlation_id)
        self.channel.basic_publish(
            exchange='', routing_key='lab08.requests', body=str(request),
            properties=pika.BasicProperties(reply_to=self.reply_to,
                                            correlation_id=correlation_id))
        return correlation_id

    def wait(self, correlation_id, timeout=2.0):
        deadline = time.monotonic() + timeout
        while correlation_id not in self.replies and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.05)
        self.pending.discard(correlation_id)  # from now on, its answer is stale
        return self.replies.pop(correlation_id, (None, {}))

    def call(self, request, timeout=2.0):
        body, headers = self.wait(self.send(request), timeout)
        if 'error' in headers:  # an error reply: see "A poison message" below
            return f"error: {headers['error']}"
        return None if body is None else int(body)


client = RPCClient(connection)
print("fib(10) =", client.call(10))
# Expected output (solution):
# fib(10) = 55

# %% [markdown]
# Your server, checked by a request of the check's own (it waits for the answer):

# %%
self_check("08.rpc-server", endpoints)
# Expected result (solution):
# ✔ passed  08.rpc-server: the server answered '10' with '55' and the request's correlation_id
# Expected result (student):
# ✘ not yet  08.rpc-server: no reply within 3 s to a request sent to 'lab08.requests' Hint: The client waits on its own reply queue and matches answers by id: does your server send the answer where the request said, tagged with the request's id? (more: hint=2)

# %% [markdown]
# ## Direct reply-to: no reply queue at all
#
# Declaring a queue per client costs the broker work. RabbitMQ offers a pseudo-queue,
# `amq.rabbitmq.reply-to`: consume from it (with `auto_ack=True`) on a channel, send the
# request from **the same channel** with `reply_to='amq.rabbitmq.reply-to'`, and the answer
# comes straight back to that channel. The server does not change.

# %%
direct = RPCClient(connection, reply_to='amq.rabbitmq.reply-to')
print("fib(20) =", direct.call(20))
# Expected output (solution):
# fib(20) = 6765

# %% [markdown]
# ## The server is down: the client times out
#
# A call must not wait forever. Nobody tells the client that the server went away: in AMQP
# a client never sees another client's connection drop, only the broker does. With the
# server stopped, the request stays in the durable request queue, and `call` returns `None`
# after its timeout. A passive declare shows what the broker knows: the request waiting,
# and no consumer on the queue.

# %%
server.stop()
started = time.monotonic()
print("answer:", client.call(7, timeout=1.0),
      f"after {round(time.monotonic() - started)} s")
requests = channel.queue_declare(queue='lab08.requests', passive=True).method
print("requests waiting:", requests.message_count, "| servers consuming:", requests.consumer_count)
# Expected output:
# answer: None after 1 s
# requests waiting: 1 | servers consuming: 0

# %% [markdown]
# When a server comes back, it answers that old request — to a client that gave up. The
# client's next call receives the old answer first, sees a correlation id it no longer
# waits for, and ignores it (`stale`).
#
# RabbitMQ's own tools for noticing that a peer is gone work through the broker: a queue
# that goes away with its owner (an exclusive queue with its connection, an auto-delete
# queue with its last consumer); a **consumer-cancel notification**, which tells a
# consumer that its queue was deleted; and the `rabbitmq_event_exchange` plugin, which
# publishes events such as `connection.closed` and `consumer.deleted` to the exchange
# `amq.rabbitmq.event` for whoever subscribes. A server answering with `mandatory=True`
# also gets its answer back when the client's exclusive reply queue is gone.

# %%
server = RPCServer("server-1")
print("fib(12) =", client.call(12), "| stale answers ignored:", client.stale)
# Expected output (solution):
# fib(12) = 144 | stale answers ignored: 1

# %% [markdown]
# ## A slow server
#
# A server that takes 2 s to answer is, for a client with a 0.5 s timeout, the same as a
# server that is down. The late answer arrives anyway and is ignored later.

# %%
server.stop()
slow = RPCServer("slow", delay=2.0)
print("answer:", client.call(5, timeout=0.5))
slow.stop()  # stops while still waiting: the request was not acked and goes back
# Expected output:
# answer: None

# %% [markdown]
# ## A server that answers twice
#
# Nothing in AMQP stops a buggy server from answering twice (or a request from being
# delivered twice after a crash). The correlation id makes the client safe: the second
# answer finds no pending request.

# %%
channel.queue_purge(queue='lab08.requests')
twice = RPCServer("twice", answers=2)
print("fib(8) =", client.call(8))
client.connection.process_data_events(time_limit=0.5)  # let the duplicate arrive
print("stale answers ignored so far:", client.stale)
twice.stop()
# Expected output (solution):
# fib(8) = 21
# stale answers ignored so far: 2

# %% [markdown]
# ## Several servers share the request queue
#
# Start three servers on the same queue: RabbitMQ hands each request to one of them
# (round robin; `prefetch_count=1` keeps a busy server from hoarding requests). The client
# sends six requests at once, then collects the answers, each tagged with its server.

# %%
servers = [RPCServer(f"worker-{number}") for number in (1, 2, 3)]
ids = [client.send(n) for n in range(20, 26)]
answers = [client.wait(correlation_id) for correlation_id in ids]
print("answers:", [int(body) for body, _ in answers if body is not None])
print("servers that answered:", sorted({headers.get('server') for _, headers in answers
                                        if headers}))
# Expected output (solution):
# answers: [6765, 10946, 17711, 28657, 46368, 75025]
# servers that answered: ['worker-1', 'worker-2', 'worker-3']

# %% [markdown]
# ## A poison message
#
# A client sends a request the servers cannot parse: `'ten'` instead of `10`. The three
# servers still run; the client waits one second. Then the servers' status lines:

# %%
print("answer:", client.call('ten', timeout=1.0))
for worker in servers:
    worker.thread.join(timeout=3)  # a crashed server's thread ends
for worker in servers:
    print(worker.status())
print("deliveries of b'ten':",
      sorted("redelivered" if w.redelivered else "first" for w in servers if w.error))
# Expected output:
# answer: None
# worker-1: crashed on request b'ten' -> ValueError: invalid literal for int() with base 10: b'ten'
# worker-2: crashed on request b'ten' -> ValueError: invalid literal for int() with base 10: b'ten'
# worker-3: crashed on request b'ten' -> ValueError: invalid literal for int() with base 10: b'ten'
# deliveries of b'ten': ['first', 'redelivered', 'redelivered']

# %% [markdown]
# One request killed all three. The traceback of one of them says where: `int(body)` in
# `handle_request`.

# %%
print(servers[0].traceback)

# %% [markdown]
# What happened, step by step:
#
# 1. One server got `'ten'`; `int(b'ten')` raised before the server answered or acked.
# 2. The server crashed and its connection closed. The broker puts every unacked message
#    back in the queue, so `'ten'` went back — flagged `redelivered`.
# 3. The next server got it, and crashed the same way; then the third.
#
# A request that crashes every consumer it reaches is a **poison message**. It is still in
# the queue, and no server is left:

# %%
requests = channel.queue_declare(queue='lab08.requests', passive=True).method
print("requests waiting:", requests.message_count, "| servers consuming:", requests.consumer_count)
# Expected output:
# requests waiting: 1 | servers consuming: 0

# %% [markdown]
# A new server, started now, gets the poison first — and dies at once. Restarting servers
# does not help; neither would a request with a huge number (`fib` of a billion), which
# keeps a server busy for hours instead of crashing it.

# %%
fresh = RPCServer("worker-4")
fresh.thread.join(timeout=2)
print(fresh.status())
# Expected output:
# worker-4: crashed on request b'ten' -> ValueError: invalid literal for int() with base 10: b'ten'

# %% [markdown]
# First aid, by hand: purge the request queue. That removes the poison — and every good
# request waiting behind it.

# %%
purged = channel.queue_purge(queue='lab08.requests').method.message_count
print("purged:", purged)
# Expected output:
# purged: 1

# %% [markdown]
# ## A server that survives poison (exercise)
#
# Write `safe_handle`, a handler that never lets a bad request kill the server:
#
# - a request whose body is not a whole number gets an **error reply**: an empty body
#   with a header `'error'` that says what was wrong, sent where the request asked
#   (`reply_to`) with the request's `correlation_id` — so the client knows at once instead
#   of waiting for its timeout (`call` returns `"error: ..."` for such a reply);
# - then the bad request is **rejected without requeue**: it leaves the queue for good
#   (with a dead-letter exchange on the queue, lab 09, it would be kept for a human);
# - a good request is answered with its Fibonacci number (the `answer` function) and acked
#   only after the answer is sent.
#
# The check starts two of your servers, sends `'ten'` and then `'10'` (with a reply queue
# and correlation ids of its own), and passes when both servers still consume, `'10'` is
# answered with `55`, and the poison has left `lab08.requests`.

# %%
def safe_handle(ch, method, properties, body, server):
    ### BEGIN SOLUTION
    try:
        number = int(body)
    except ValueError:
        ch.basic_publish(exchange='', routing_key=properties.reply_to, body=b'',
                         properties=pika.BasicProperties(
                             correlation_id=properties.correlation_id,
                             headers={'server': server.name,
                                      'error': f'not a number: {body!r}'}))
        ch.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
        return
    answer(ch, properties, str(fib(number)).encode(), server.name)
    ch.basic_ack(delivery_tag=method.delivery_tag)
    # STUB: handle_request(ch, method, properties, body, server)  # dies on poison: replace
    ### END SOLUTION


# %%
safe = [RPCServer(f"safe-{number}", handler=safe_handle) for number in (1, 2)]
self_check("08.poison-message", endpoints)
# Expected result (solution):
# ✔ passed  08.poison-message: the poison request 'ten' got an error reply (not a number: b'ten') and left 'lab08.requests'; '10' was answered with '55'; all 2 servers still consume
# Expected result (student):
# ✘ not yet  08.poison-message: 'ten' stopped 2 of 2 servers: a server must catch what it cannot handle and go on; no reply to the good request '10' within 3 s; 'ten' got no reply and went back to 'lab08.requests', to kill the next server (the check took its requests out again) Hint: A request the server cannot handle must not kill it, and must not go back to the queue to kill the next one: what can a server do with a request it will never be able to answer, so that its client learns at once? (more: hint=2)

# %% [markdown]
# What the client sees now, and how the servers are doing:

# %%
print("'ten' ->", client.call('ten'))
print("fib(30) =", client.call(30))
print("servers alive:", sum(s.thread.is_alive() for s in safe), "of", len(safe))
# Expected output (solution):
# 'ten' -> error: not a number: b'ten'
# fib(30) = 832040
# servers alive: 2 of 2
# Expected output (student):
# 'ten' -> None
# fib(30) = None
# servers alive: 0 of 2

# %% [markdown]
# ## Summary
#
# - A request queue plus a reply queue turn asynchronous messaging into a call:
#   `reply_to` says where to answer, `correlation_id` which request an answer belongs to.
# - An exclusive, server-named reply queue belongs to one client connection; direct
#   reply-to (`amq.rabbitmq.reply-to`) avoids declaring any queue.
# - A client must time out: nobody tells it that the server's connection dropped. Requests
#   outlive a server that is down (durable queue), so answers can arrive late or twice:
#   match them by correlation id and ignore the rest.
# - Several servers on one request queue share the load; `prefetch_count=1` keeps it fair.
# - A request that crashes its server before the ack goes back to the queue and crashes
#   the next one: a poison message. A server must catch what it cannot handle, answer with
#   an error reply, and reject the request without requeue (or dead-letter it).
