# %% [markdown]
# # Lab 00 — Setup: real brokers for the labs
#
# **Learning goals**
#
# - start a RabbitMQ and a Mosquitto broker with one call, and read where they are;
# - tell whether your machine can run brokers, and why not (`mqkit.doctor()`);
# - know what to do when a broker does not start.
#
# **Estimated time:** 3 minutes.
#
# Every lab talks to *real* brokers. You never install or configure one by hand: the
# `mqkit` package starts them (with Docker when it is there, else as local processes) or
# uses your classroom's broker when your instructor set `MQKIT_AMQP_URL`.

# %% [markdown]
# ## Start the brokers
#
# `mqkit.start_brokers()` starts both brokers, or reuses the ones already running, and waits
# until they really answer. The first start takes a few seconds; later calls are instant.

# %%
import mqkit

endpoints = mqkit.start_brokers()

# %% [markdown]
# `endpoints` tells where the brokers are: three URLs and the backend that runs them. Its
# printed form hides the password.

# %%
print(endpoints.amqp.redacted())
print(endpoints.mqtt.redacted())
# Expected output:
# amqp://mqkit:***@127.0.0.1:PORT
# mqtt://mqkit:***@127.0.0.1:PORT

# %% [markdown]
# The full URLs, such as `endpoints.amqp_url`, contain the password: pass them to
# `pika.URLParameters(...)` (lab 01) rather than printing them, and never paste them into a
# notebook you share.
#
# ## Which backends can run here?
#
# `mqkit.doctor()` asks each way of getting a broker whether it works on this machine and,
# if not, what would fix it. Your output depends on your machine.

# %%
for availability in mqkit.doctor():
    mark = "ok" if availability.is_available else "no"
    print(f"[{mark}] {availability.backend:<9} {availability.reason}")

# %% [markdown]
# And what runs right now:

# %%
status = mqkit.broker_status()
for broker in status["brokers"]:
    print(broker.broker, "is", "up" if broker.is_running else "DOWN")
# Expected output:
# rabbitmq is up
# mosquitto is up

# %% [markdown]
# The same, as a panel you can keep open: it shows both brokers and has buttons to start,
# restart and stop them. (Restarting takes a few seconds; stopping deletes their data.)

# %%
from mqkit.widgets import BrokerPanel

BrokerPanel()

# %% [markdown]
# ## When a broker does not start
#
# mqkit's errors say what failed, what it saw, and — after `Hint:` — what to try next.
# For instance, asking for the *external* backend without saying where the broker is:

# %%
try:
    mqkit.start_brokers(backend="external")
except mqkit.MQKitError as error:
    print(type(error).__name__)
    print(error)
# Expected output:
# BackendUnavailable
# The external backend needs MQKIT_AMQP_URL and MQKIT_MQTT_URL.
# Hint: Set both (MQKIT_MANAGEMENT_URL too, if the broker has the management plugin), or choose another backend.

# %% [markdown]
# What to do when `start_brokers()` fails:
#
# | you see | try |
# |---|---|
# | `NoBackendError` | install Docker, or `apt-get install rabbitmq-server mosquitto`, or ask for the classroom broker's URLs (`MQKIT_AMQP_URL`, `MQKIT_MQTT_URL`) |
# | `BrokerTimeout` | a slow machine: `MQKIT_STARTUP_TIMEOUT=120`, then run the cell again |
# | `BrokerExited` | read the log lines in the message; in a terminal `mqkit logs rabbitmq` |
# | `AuthenticationError` | stale credentials: `mqkit down`, then start again |
# | anything odd | in a terminal: `mqkit doctor`, `mqkit status`, `mqkit down` then `mqkit up` |
#
# The brokers keep running when you close the notebook, so the next lab starts instantly;
# `mqkit down` in a terminal stops them and deletes their data. To start one lab over,
# `mqkit.cleanup(endpoints, "lab04.")` deletes that lab's queues and exchanges.
#
# **On Binder** (mybinder.org), a session that sits idle for about ten minutes is ended,
# and everything in it goes: your edits, and the brokers with their messages. Before you
# step away, download your notebook (*File › Download*); when you come back, open the
# Binder link again and upload it.

# %% [markdown]
# ## Self-check
#
# Every lab ends its exercises with cells like this one. It looks at the real broker and
# shows one line: `✔ passed`, or `✘ not yet` with a hint. It never raises, so the notebook
# runs on. (Keep `self_check(...)` as the last line of its cell, so its verdict shows.)
#
# The first hint names what is missing, in terms of the idea, not the code. Stuck? Ask for
# the next, more concrete level with `hint=2` (for example
# `self_check("00.brokers-reachable", endpoints, hint=2)`); only the last level shows code.

# %%
from mqkit.grading import self_check

self_check("00.brokers-reachable", endpoints)
# Expected result:
# ✔ passed  00.brokers-reachable: RabbitMQ, its management API and Mosquitto all answer

# %% [markdown]
# ## Summary
#
# - `endpoints = mqkit.start_brokers()` gives you running brokers; every lab starts with it.
# - `endpoints.amqp_url` and `endpoints.mqtt_url` carry the password: use them, don't share them.
# - `mqkit.doctor()` and the `Hint:` of each error tell you how to fix a machine that cannot
#   run brokers.
#
# Next: **lab 01**, connections and channels.
