# %% [markdown]
# # Lab 01 — Connection and channel
#
# **Learning goals**
#
# - open a connection to RabbitMQ with `pika.BlockingConnection`, from a URL
#   (`URLParameters`) or from parts (`ConnectionParameters`);
# - use channels as lightweight connections inside one TCP connection, several at once;
# - close channels and connections cleanly;
# - find connections, channels, exchanges, bindings, queues, message rates and unacked
#   counts in RabbitMQ's management UI, and spot a forgotten ack there and with
#   `rabbitmqctl list_queues`;
# - read what a wrong password or a wrong port gives you.
#
# **Estimated time:** 20 minutes.

# %%
import pika
import pika.exceptions

import mqkit
from mqkit.grading import self_check

endpoints = mqkit.start_brokers()

# %% [markdown]
# ## A connection from a URL
#
# An AMQP URL holds everything a client needs: `amqp://user:password@host:port/vhost`.
# `pika.URLParameters` reads it; `pika.BlockingConnection` opens the TCP connection, logs in
# and returns once the broker has said yes. (On a classroom cluster, `endpoints.amqp_url`
# lists every node, separated by commas; this lab takes the first, lab 02 hands pika them
# all.)

# %%
url = endpoints.amqp_url.split(",")[0]
parameters = pika.URLParameters(url)
connection = pika.BlockingConnection(parameters)
print("connection open:", connection.is_open)
# Expected output:
# connection open: True

# %% [markdown]
# ## The same connection from its parts
#
# `ConnectionParameters` takes host, port, virtual host and credentials one by one: handy
# when they come from separate settings. `endpoints.amqp` has the parts of the URL.

# %%
amqp = endpoints.amqp
explicit = pika.ConnectionParameters(
    host=amqp.host,
    port=amqp.port,
    virtual_host=amqp.vhost,
    credentials=pika.PlainCredentials(amqp.username, amqp.password),
)
second_connection = pika.BlockingConnection(explicit)
print("second connection open:", second_connection.is_open)
second_connection.close()
print("second connection closed:", second_connection.is_closed)
# Expected output:
# second connection open: True
# second connection closed: True

# %% [markdown]
# ## Channels: lightweight connections
#
# Opening a TCP connection costs several round trips, a login and broker memory. An AMQP
# connection therefore carries many *channels*: every publish, consume or declare happens on
# a channel, and each channel has its own number within the connection.

# %%
channel = connection.channel()
other_channel = connection.channel()  # (run again, these get the next free numbers)
print("channel numbers:", channel.channel_number, other_channel.channel_number)
# Expected output:
# channel numbers: 1 2

# %% [markdown]
# A channel error closes only that channel. Here we ask (with `passive=True`, "only check")
# for a queue that does not exist: the broker closes the channel with code 404, and the
# connection and the other channel carry on.

# %%
other_channel = connection.channel()  # a fresh channel, so this cell can run again
try:
    other_channel.queue_declare(queue="lab01.does-not-exist", passive=True)
except pika.exceptions.ChannelClosedByBroker as error:
    print("channel closed by the broker:", error.reply_code, error.reply_text)
print("other channel closed:", other_channel.is_closed)
print("first channel still open:", channel.is_open)
print("connection still open:", connection.is_open)
# Expected output:
# channel closed by the broker: 404 NOT_FOUND - no queue 'lab01.does-not-exist' in vhost '/'
# other channel closed: True
# first channel still open: True
# connection still open: True

# %% [markdown]
# ## See them in the management UI
#
# RabbitMQ's *management plugin* serves a web UI (and the HTTP API behind it, which mqkit's
# widgets and self-checks read). It shows the broker's side of everything in these labs:
# connections, channels, exchanges, queues and their messages.
#
# Two ways to open it:
#
# - **In JupyterLab:** *File › New Launcher*, then the tile **RabbitMQ management**. It
#   opens `/rabbitmq-management/` on your JupyterLab's own address in a new browser tab:
#   JupyterLab (its `jupyter-server-proxy` extension) forwards it to the broker, wherever
#   mqkit runs it. This also works on Binder.
# - **Directly:** the management URL, printed below, when your browser runs on the same
#   machine as the broker.
#
# Log in with the user below. The password is in `endpoints.management.password`: show it
# in a cell of its own, copy it, and clear that output (*Edit › Clear Outputs*).

# %%
print("management UI:", endpoints.management.redacted())
print("user:", endpoints.management.username)
# Expected output:
# management UI: http://mqkit:***@127.0.0.1:PORT
# user: mqkit

# %% [markdown]
# Give the UI something to show: a connection with a name of its own (the
# `connection_name` client property; the UI lists it under the connection's address) and
# three channels on it.

# %%
tour_parameters = pika.URLParameters(url)
tour_parameters.client_properties = {"connection_name": "lab01-tour"}
tour = pika.BlockingConnection(tour_parameters)
tour_channels = [tour.channel() for _ in range(3)]
print("lab01-tour open with channels", [c.channel_number for c in tour_channels])
# Expected output:
# lab01-tour open with channels [1, 2, 3]

# %% [markdown]
# Where to look (the UI refreshes its figures every few seconds):
#
# | tab | what it shows |
# |---|---|
# | **Overview** | totals for the whole broker: queued messages (*Ready*, *Unacked*, *Total*) and *message rates* (publish, deliver, ack per second) as charts |
# | **Connections** | every client connection: `lab01-tour` under its address, its user, state and number of channels; click it for its channels |
# | **Channels** | every channel, as `address (number)`: its prefetch, and how many deliveries it holds *unacked* |
# | **Exchanges** | the exchanges of each vhost: the default one, shown as *(AMQP default)*, the `amq.*` ones and yours; click one for its bindings |
# | **Queues** | every queue with its messages (*Ready*, *Unacked*, *Total*) and rates (*incoming*, *deliver / get*, *ack*); click one for its bindings, its consumers and *Get messages* |
#
# Find `lab01-tour` under *Connections* and its three channels under *Channels*.

# %% [markdown]
# ## Debugging with the UI: a forgotten ack
#
# A consumer that takes messages with `auto_ack=False` must acknowledge each one (lab 03).
# One that forgets holds on to them: while its channel is open, the broker neither deletes
# them nor hands them to another consumer, and a consumer that runs for days piles them
# up. Here is such a consumer, on the queue `lab01.forgotten`:

# %%
forgetful = pika.BlockingConnection(parameters)
forgetful_channel = forgetful.channel()
forgetful_channel.queue_delete(queue="lab01.forgotten")  # start clean on a re-run
forgetful_channel.queue_declare(queue="lab01.forgotten", durable=True)
for number in (1, 2, 3):
    forgetful_channel.basic_publish(exchange="", routing_key="lab01.forgotten",
                                    body=f"job {number}")
for method, properties, body in forgetful_channel.consume("lab01.forgotten",
                                                          inactivity_timeout=1):
    if method is None:
        break
    print("working on", body.decode())  # ... and no basic_ack
requeued = forgetful_channel.cancel()  # stop consuming; the 3 deliveries stay unacked
# Expected output:
# working on job 1
# working on job 2
# working on job 3

# %% [markdown]
# In the UI, *Queues* shows `lab01.forgotten` with *Ready* 0 and *Unacked* 3, and
# *Channels* shows the channel that holds them. A growing *Unacked* with a steady *ack*
# rate of 0 is the signature of a forgotten ack.
#
# The same figures on the command line: `rabbitmqctl list_queues name messages_ready
# messages_unacknowledged`, run where the broker runs. mqkit's broker is not the system's
# RabbitMQ node: it has a node name, an Erlang port and a cookie of its own (or it runs in
# a container), so the plain command would look for the wrong node.
# `mqkit.rabbitmqctl_command` writes the command for it. (On a classroom broker, only its
# administrator can run `rabbitmqctl`; the cell says so.)

# %%
try:
    command = mqkit.rabbitmqctl_command("list_queues", "name", "messages_ready",
                                        "messages_unacknowledged")
    print(command.shell)
except mqkit.MQKitError as error:
    command = None
    print(error)

# %% [markdown]
# Paste that line into a terminal (*File › New › Terminal*), or run it from here. Without
# `rabbitmqctl`, the cell asks the management API, where the UI gets its figures: they are
# statistics, collected every few seconds, so it waits until they agree with the exact
# count of ready messages.

# %%
import time


def lab01_queues():
    if command is not None:
        try:
            for line in command.run().splitlines():
                if line.startswith(("name", "lab01.")):
                    print(*line.split("\t"))
            return
        except mqkit.MQKitError as error:
            print(error)  # then the management API, below
    with pika.BlockingConnection(parameters) as look:  # the exact ready count, over AMQP
        ready = look.channel().queue_declare(queue="lab01.forgotten", passive=True)
    for _ in range(40):  # at most 20 s, until the statistics agree and count all 3 jobs
        figures = mqkit.Admin(endpoints).queue("lab01.forgotten", vhost=endpoints.amqp.vhost)
        if (figures.get("messages_ready"), figures.get("messages")) == (
                ready.method.message_count, 3):
            break
        time.sleep(0.5)
    print("name messages_ready messages_unacknowledged")
    print(figures["name"], figures.get("messages_ready"), figures.get("messages_unacknowledged"))


lab01_queues()
# Expected output:
# name messages_ready messages_unacknowledged
# lab01.forgotten 0 3

# %% [markdown]
# When the channel closes (the consumer stopped, or crashed), RabbitMQ puts its unacked
# messages back: *Ready* again, for the next consumer, marked as redelivered. Nothing was
# lost, but nothing was done either.

# %%
if forgetful_channel.is_open:
    forgetful_channel.close()
lab01_queues()
# Expected output:
# name messages_ready messages_unacknowledged
# lab01.forgotten 3 0

# %% [markdown]
# ## Closing
#
# Close channels you no longer need, and the connection when you are done: the broker then
# frees its resources at once instead of waiting for a missed heartbeat. A `with` block
# closes the connection for you, even when the code inside raises.

# %%
done = pika.BlockingConnection(parameters)  # a connection of its own to close here
done_channel = done.channel()
done_channel.close()
done.close()
print("closed:", done_channel.is_closed, done.is_closed)

with pika.BlockingConnection(parameters) as short_lived:
    short_lived.channel().queue_declare(queue="", exclusive=True)
print("closed by the with block:", short_lived.is_closed)
# Expected output:
# closed: True True
# closed by the with block: True

# %% [markdown]
# ## Heartbeats
#
# While a connection is idle, client and broker send each other a tiny *heartbeat* frame,
# at an interval agreed when the connection opens (pika takes the broker's proposal unless
# you ask for another with `ConnectionParameters(heartbeat=...)`). A side that hears
# nothing for about two intervals takes the other for dead and closes the connection. pika's
# `BlockingConnection` sends and answers heartbeats only while your code is inside a pika
# call, so a connection left idle in a notebook for long is found closed on the next cell
# (`StreamLostError`). `mqkit.notebook_connection(endpoints)`, which later labs use, keeps
# it alive in the background and reconnects on its next use.

# %% [markdown]
# ## When the connection fails
#
# A wrong password: RabbitMQ refuses the login with `403 ACCESS_REFUSED` and pika raises
# `ProbableAuthenticationError`. The broker says why before it closes the connection because
# pika tells it, at the handshake, that it understands `authentication_failure_close`; a
# client that does not gets the socket closed without a word (hence "probable").

# %%
wrong_password = pika.ConnectionParameters(
    host=amqp.host,
    port=amqp.port,
    virtual_host=amqp.vhost,
    credentials=pika.PlainCredentials(amqp.username, "not-the-password"),
    connection_attempts=1,
)
try:
    pika.BlockingConnection(wrong_password)
except pika.exceptions.ProbableAuthenticationError as error:
    print("refused:", type(error).__name__)
    print("the broker said:", error)
    print("is it a connection error?", isinstance(error, pika.exceptions.AMQPConnectionError))
# Expected output:
# refused: ProbableAuthenticationError
# the broker said: ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.'
# is it a connection error? True

# %% [markdown]
# A wrong port: nothing listens there, so the operating system refuses the TCP connection
# and pika raises `AMQPConnectionError` (port 1 is never a broker).

# %%
wrong_port = pika.ConnectionParameters(host=amqp.host, port=1, connection_attempts=1)
try:
    pika.BlockingConnection(wrong_port)
except pika.exceptions.AMQPConnectionError as error:
    print("no connection:", type(error).__name__)
# Expected output:
# no connection: AMQPConnectionError

# %% [markdown]
# `mqkit.amqp_connection`, the way mqkit itself opens every connection, turns both into an
# explained error: what failed, where, what the broker said, and a `Hint:` with the next
# step.

# %%
from dataclasses import replace

for address in (replace(amqp, password="not-the-password"), replace(amqp, port=1)):
    try:
        mqkit.amqp_connection(address.url())
    except mqkit.BrokerConnectionError as error:
        print(type(error).__name__, "—", error.message)
        print("  Hint:", error.hint)
# Expected output:
# AuthenticationError — RabbitMQ refused the login of user 'mqkit' (host=127.0.0.1, port=PORT, vhost=/): ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.'.
#   Hint: Check the credentials (user name, password and vhost) in the AMQP URL; `mqkit status` shows the URL of brokers mqkit started.
# BrokerConnectionError — No AMQP connection (host=127.0.0.1, port=1, vhost=/): AMQPConnectorSocketConnectError: ConnectionRefusedError(111, 'Connection refused').
#   Hint: Is the broker running? `mqkit status` shows it; `mqkit up` starts it.

# %% [markdown]
# ## Exercise: your own connection
#
# Open a connection from `url`, open a channel on it, declare the durable
# queue `lab01.hello` and publish one message to it through the default exchange
# (`exchange=""`, `routing_key="lab01.hello"`). Close the connection at the end.

# %%
# Start clean: remove the queue a previous run of this lab left behind.
with pika.BlockingConnection(parameters) as cleanup:
    cleanup.channel().queue_delete(queue="lab01.hello")

# %%
### BEGIN SOLUTION
my_connection = pika.BlockingConnection(pika.URLParameters(url))
my_channel = my_connection.channel()
my_channel.queue_declare(queue="lab01.hello", durable=True)
my_channel.basic_publish(exchange="", routing_key="lab01.hello", body="hello from lab 01")
my_connection.close()
### END SOLUTION

# %%
self_check("01.own-connection", endpoints)
# Expected result (solution):
# ✔ passed  01.own-connection: queue 'lab01.hello' holds 1 message
# Expected result (student):
# ✘ not yet  01.own-connection: there is no queue 'lab01.hello' Hint: The queue did not get a message over a connection of yours: a message needs a connection, a channel on it, a queue to land in, and a publish. (more: hint=2)

# %% [markdown]
# ## Summary
#
# - `pika.BlockingConnection(pika.URLParameters(url))` opens an authenticated connection;
#   `ConnectionParameters` does the same from separate parts.
# - Work happens on channels: many per connection, numbered, cheap; an error closes the
#   channel, not the connection.
# - Close what you open (or use `with`).
# - The management UI (JupyterLab's *RabbitMQ management* tile) shows the broker's side:
#   connections, channels, exchanges, queues; *Unacked* that only grows means a forgotten
#   ack, and `rabbitmqctl list_queues name messages_ready messages_unacknowledged` says
#   the same (`mqkit.rabbitmqctl_command` writes it for mqkit's broker).
# - A wrong password gives `ProbableAuthenticationError`, a wrong port
#   `AMQPConnectionError`; both are `AMQPConnectionError`s.
#
# Next: **lab 02**, queues and durability.
