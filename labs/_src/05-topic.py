# %% [markdown]
# # Lab 05 — The topic exchange
#
# **Learning goals**
#
# - bind queues to a **topic exchange** with patterns: `*` (exactly one word) and `#`
#   (zero or more words);
# - read a routing key as words separated by dots, and predict which patterns match it —
#   including the awkward cases: `#` matching zero words, `*` needing exactly one, empty
#   words;
# - use the routing explainer to see *why* a pattern matches or not;
# - design the bindings of a log-routing scheme that is given in words;
# - predict where messages go, then let the broker prove you right or wrong.
#
# **Estimated time:** 35 minutes.
#
# The lecture's example is a **blog platform** with four queues, **Politics**,
# **Entertainment**, **Sports** and **Technology**: each post is published with a routing key
# such as `sports.football` or `science.technology`, and the queues are bound with patterns
# such as `sports.#` (everything about sports) and `#.technology` (anything ending in
# technology).

# %%
import mqkit
from mqkit.grading import self_check
from mqkit.grading.predict import predict_then_publish
from mqkit.widgets import RoutingExplainerModel

endpoints = mqkit.start_brokers()
connection = mqkit.notebook_connection(endpoints, name="lab05")
channel = connection.channel()
channel.confirm_delivery()

# Start clean: remove what a previous run of this lab left behind.
for name in ("lab05.politics", "lab05.entertainment", "lab05.sports", "lab05.technology",
             "lab05.my-feed", "lab05.errors", "lab05.payment", "lab05.logins"):
    channel.queue_delete(queue=name)
for name in ("lab05.blog", "lab05.logs"):
    channel.exchange_delete(exchange=name)


def drain(queue):
    """Take the messages out of a queue (at most 100) and return their bodies as text."""
    bodies = []
    for _ in range(100):
        method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body.decode())
    return bodies

# %% [markdown]
# ## Words and patterns
#
# A topic exchange splits the routing key at every `.` into **words**. A binding key is a
# pattern of words where `*` stands for exactly one word and `#` for zero or more words.
# We bind the lecture's four queues:
#
# | queue | binding key | wants |
# |---|---|---|
# | `lab05.politics` | `politics.*` | politics posts with exactly one word after `politics` |
# | `lab05.entertainment` | `entertainment.#` | everything about entertainment |
# | `lab05.sports` | `sports.#` | everything about sports, however specific |
# | `lab05.technology` | `#.technology` | every post whose last word is `technology` |

# %%
BLOG = ['lab05.politics', 'lab05.entertainment', 'lab05.sports', 'lab05.technology']
channel.exchange_declare(exchange='lab05.blog', exchange_type='topic', durable=True)
for queue, binding_key in [('lab05.politics', 'politics.*'),
                           ('lab05.entertainment', 'entertainment.#'),
                           ('lab05.sports', 'sports.#'),
                           ('lab05.technology', '#.technology')]:
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_bind(queue=queue, exchange='lab05.blog', routing_key=binding_key)

# %%
posts = ['sports.football', 'science.technology', 'sports.technology', 'politics.election',
         'politics.us.election', 'entertainment.movies.review', 'sports']
for key in posts:
    channel.basic_publish(exchange='lab05.blog', routing_key=key, body=key)

for queue in BLOG:
    print(f'{queue}:', drain(queue))
# Expected output:
# lab05.politics: ['politics.election']
# lab05.entertainment: ['entertainment.movies.review']
# lab05.sports: ['sports.football', 'sports.technology', 'sports']
# lab05.technology: ['science.technology', 'sports.technology']

# %% [markdown]
# Three things to notice:
#
# - `sports.technology` went to **two** queues: each matching binding gets a copy.
# - `sports` alone matched `sports.#`: **`#` may match zero words**.
# - `politics.us.election` matched nothing: **`*` is exactly one word**, and `us.election`
#   is two.

# %% [markdown]
# ## Watch it live
#
# The inbox consumes the four queues; publish posts from the form with different routing
# keys and see who gets them.

# %%
from mqkit.widgets import Publisher, QueueInbox, RoutingExplainer, TopologyView

inbox = QueueInbox(BLOG, endpoints)
inbox

# %%
publisher = Publisher(endpoints, exchange='lab05.blog', routing_key='sports.tennis',
                      body='A new tennis post')
publisher

# %%
for key in ('sports.tennis', 'home.technology', 'politics.vote'):
    publisher.model.publish(exchange='lab05.blog', routing_key=key, body=key)
inbox.model.wait_for(3, timeout=5)
print("the inbox received", inbox.model.count, "messages")
# Expected output:
# the inbox received 3 messages

# %%
TopologyView(endpoints, prefix="lab05.")

# %% [markdown]
# ## Why? The routing explainer
#
# Type routing keys and see each binding judged. Try `sports`, `technology`, `politics`,
# `politics.`, `sports..technology` and the empty key.

# %%
RoutingExplainer(endpoints, 'lab05.blog', routing_key='technology')

# %% [markdown]
# The awkward cases as text. `technology` alone matches `#.technology` (`#` takes zero
# words); `politics` alone does not match `politics.*` (nothing for `*`); `politics.` has
# two words, the second one **empty** — and `*` matches an empty word.

# %%
explainer = RoutingExplainerModel.from_broker(endpoints, 'lab05.blog')
for key in ('technology', 'politics', 'politics.'):
    print(explainer.text(key))
# Expected output:
# lab05.blog (topic), routing key 'technology':
# ✘ lab05.entertainment  binding key 'entertainment.#'  word 1: the binding wants `entertainment`, the routing key has `technology`
# ✘ lab05.politics  binding key 'politics.*'  word 1: the binding wants `politics`, the routing key has `technology`
# ✘ lab05.sports  binding key 'sports.#'  word 1: the binding wants `sports`, the routing key has `technology`
# ✔ lab05.technology  binding key '#.technology'  `#` matches zero words here (it matches zero or more)
# → delivered to: lab05.technology
# lab05.blog (topic), routing key 'politics':
# ✘ lab05.entertainment  binding key 'entertainment.#'  word 1: the binding wants `entertainment`, the routing key has `politics`
# ✘ lab05.politics  binding key 'politics.*'  `*` needs exactly one word; `politics` has none after it
# ✘ lab05.sports  binding key 'sports.#'  word 1: the binding wants `sports`, the routing key has `politics`
# ✘ lab05.technology  binding key '#.technology'  after `#` the binding wants the routing key to end with `technology`; it ends with `politics`
# → unroutable: no binding matches (the broker drops the message, or returns it when published with mandatory=True)
# lab05.blog (topic), routing key 'politics.':
# ✘ lab05.entertainment  binding key 'entertainment.#'  word 1: the binding wants `entertainment`, the routing key has `politics`
# ✔ lab05.politics  binding key 'politics.*'  `*` matches an empty word
# ✘ lab05.sports  binding key 'sports.#'  word 1: the binding wants `sports`, the routing key has `politics`
# ✘ lab05.technology  binding key '#.technology'  after `#` the binding wants the routing key to end with `technology`; it ends with an empty word
# → delivered to: lab05.politics

# %% [markdown]
# ### Exercise: your own feed
#
# Bind the queue `lab05.my-feed` to `lab05.blog` so that it receives **every sports post**
# (`sports`, `sports.football`, `sports.football.uk`, …) and **every post whose last word
# is `technology`** (`technology`, `news.technology`, …) — and nothing else: not
# `news.politics`, not `esports.games`, not `technology.news`. Two bindings are enough.

# %%
channel.queue_declare(queue='lab05.my-feed', durable=True)
### BEGIN SOLUTION
channel.queue_bind(queue='lab05.my-feed', exchange='lab05.blog', routing_key='sports.#')
channel.queue_bind(queue='lab05.my-feed', exchange='lab05.blog', routing_key='#.technology')
### END SOLUTION

# %%
self_check("05.topic-bindings", endpoints)
# Expected result (solution):
# ✔ passed  05.topic-bindings: queue 'lab05.my-feed' receives every sports post and every post ending in technology, and nothing else
# Expected result (student):
# ✘ not yet  05.topic-bindings: queue 'lab05.my-feed' did not receive a message with routing key 'sports' Hint: The feed did not receive a message routed with sports or technology: which binding key pattern matches every key that starts with sports, and which every key that ends with technology? (more: hint=2)

# %% [markdown]
# ### Exercise: predict, then publish
#
# Which queues receive each of these posts? Write a set of queue names per routing key
# (`set()` for none), then run the next cell: it publishes the posts and compares.

# %%
prediction = {
    'sports.tennis.review': set(),
    'technology': set(),
    'politics': set(),
    'politics.vote': set(),
    'news.technology.review': set(),
}
### BEGIN SOLUTION
prediction = {
    'sports.tennis.review': {'lab05.sports', 'lab05.my-feed'},
    'technology': {'lab05.technology', 'lab05.my-feed'},
    'politics': set(),
    'politics.vote': {'lab05.politics'},
    'news.technology.review': set(),
}
### END SOLUTION

# %%
predict_then_publish(endpoints, 'lab05.blog', prediction)
# Expected result (solution):
# prediction vs broker, exchange 'lab05.blog'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message                 lab05.entertainment  lab05.my-feed     lab05.politics    lab05.sports      lab05.technology
# sports.tennis.review    no · you: no ✔       yes · you: yes ✔  no · you: no ✔    yes · you: yes ✔  no · you: no ✔
# technology              no · you: no ✔       yes · you: yes ✔  no · you: no ✔    no · you: no ✔    yes · you: yes ✔
# politics                no · you: no ✔       no · you: no ✔    no · you: no ✔    no · you: no ✔    no · you: no ✔  (returned: no queue matched)
# politics.vote           no · you: no ✔       no · you: no ✔    yes · you: yes ✔  no · you: no ✔    no · you: no ✔
# news.technology.review  no · you: no ✔       no · you: no ✔    no · you: no ✔    no · you: no ✔    no · you: no ✔  (returned: no queue matched)
# 5 of 5 messages predicted right.
# Expected result (student):
# prediction vs broker, exchange 'lab05.blog'
# each cell: did the queue get it? · what you predicted · ✔ right / ✘ wrong
# message                 lab05.entertainment  lab05.politics   lab05.sports     lab05.technology
# sports.tennis.review    no · you: no ✔       no · you: no ✔   yes · you: no ✘  no · you: no ✔
# technology              no · you: no ✔       no · you: no ✔   no · you: no ✔   yes · you: no ✘
# politics                no · you: no ✔       no · you: no ✔   no · you: no ✔   no · you: no ✔  (returned: no queue matched)
# politics.vote           no · you: no ✔       yes · you: no ✘  no · you: no ✔   no · you: no ✔
# news.technology.review  no · you: no ✔       no · you: no ✔   no · you: no ✔   no · you: no ✔  (returned: no queue matched)
# ✘ 'sports.tennis.review': the broker delivered it to lab05.sports; you predicted no queue
# ✘ 'technology': the broker delivered it to lab05.technology; you predicted no queue
# ✘ 'politics.vote': the broker delivered it to lab05.politics; you predicted no queue
# 2 of 5 messages predicted right.

# %% [markdown]
# ### Exercise: route the logs
#
# Topic exchanges are made for logs. Every service publishes each log line with the routing
# key `<service>.<severity>` (`shop.info`, `payment.error`), or
# `<service>.<component>.<severity>` when a component wrote it (`payment.db.error`,
# `auth.login.warning`). The severities are `info`, `warning` and `error`.
#
# Build the routing, with as few bindings as you can:
#
# - a durable topic exchange `lab05.logs`;
# - a durable queue `lab05.errors` that receives **every error**, from any service, with or
#   without a component;
# - a durable queue `lab05.payment` that receives **everything the `payment` service logs**
#   (but nothing from a service called `payments`);
# - a durable queue `lab05.logins` that receives **every line of a `login` component**,
#   whatever the service and the severity — not `login.info`, which a *service* called
#   `login` wrote.
#
# A line may reach several queues: `payment.db.error` goes to two.

# %% [markdown]
# To try a pattern before you bind it, ask the routing model, for example
# `RoutingExplainerModel('topic', [Binding('q', 'some.#')]).text('payment.db.error')`
# (`Binding` comes from `mqkit.routing`).

# %%
### BEGIN SOLUTION
channel.exchange_declare(exchange='lab05.logs', exchange_type='topic', durable=True)
for queue in ('lab05.errors', 'lab05.payment', 'lab05.logins'):
    channel.queue_declare(queue=queue, durable=True)
channel.queue_bind(queue='lab05.errors', exchange='lab05.logs', routing_key='#.error')
channel.queue_bind(queue='lab05.payment', exchange='lab05.logs', routing_key='payment.#')
channel.queue_bind(queue='lab05.logins', exchange='lab05.logs', routing_key='*.login.*')
### END SOLUTION

# %% [markdown]
# The self-check publishes log lines such as `shop.error`, `payment.db.error`,
# `shop.login.error`, `shop.errors` and `payments.info` to `lab05.logs`, and looks where
# each one lands (taking its lines out again).

# %%
self_check("05.log-routes", endpoints)
# Expected result (solution):
# ✔ passed  05.log-routes: lab05.errors gets every error, lab05.payment everything from the payment service, lab05.logins every line of a login component, and no queue anything else
# Expected result (student):
# ✘ not yet  05.log-routes: there is no queue 'lab05.errors' Hint: Each reader is one topic pattern over the words of <service>.<severity> or <service>.<component>.<severity>: which wildcard stands for any number of words, and which for exactly one? (more: hint=2)

# %% [markdown]
# ## Summary
#
# - A topic exchange matches the routing key's **words** (split at every `.`) against
#   binding patterns: `*` is exactly one word, `#` is zero or more words.
# - `sports.#` matches `sports` itself (`#` takes zero words); `politics.*` does not match
#   `politics` (nothing for `*`) nor `politics.us.election` (two words for one `*`).
# - Words may be empty: `politics.` has an empty last word, and `*` matches it.
# - Each matching queue gets one copy, however many of its bindings match.
# - A routing key with a fixed word order (`<service>.<component>.<severity>`) lets each
#   reader pick its lines with one pattern: `#` where the number of words varies, `*` for
#   exactly one word.
# - A binding key without `*` or `#` behaves like a direct binding; `#` alone behaves like
#   fanout.
# - One `#` already matches any number of words, so a pattern never needs several. RabbitMQ
#   4.3.6 refuses a binding key with more than two `#` (406 PRECONDITION_FAILED, "at most 2
#   are allowed"); 3.10.8 and 4.0.5 still accept one. The explainer refuses it too.
#
# Next: **lab 06**, the fanout exchange, which ignores the routing key altogether.
