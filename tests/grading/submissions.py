"""Submissions for the grading tests, built at test time from the lab notebooks.

*correct* is the lab's solution notebook as generated; *partial* is the student notebook
with some exercises filled in from the solution; the others are small notebooks written the
way a student (or a cheater) might. Each entry maps a student name to a notebook.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

LABS = Path(__file__).resolve().parents[2] / "labs"

CONNECT = """\
import pika
import mqkit
endpoints = mqkit.start_brokers()
connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
channel = connection.channel()
channel.confirm_delivery()
"""


def notebook(*cells: str, student: str | None = None) -> nbformat.NotebookNode:
    """A notebook of code cells (python3 kernel), optionally naming its student."""
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if student:
        nb.metadata["mqkit"] = {"student": student}
    return nb


def lab_notebook(lab: str, solution: bool) -> nbformat.NotebookNode:
    folder = LABS / "solutions" if solution else LABS
    return nbformat.read(next(folder.glob(f"{lab}-*.ipynb")), as_version=4)


def partly_solved(lab: str, exercises: int) -> nbformat.NotebookNode:
    """The student notebook with its first ``exercises`` exercise cells solved."""
    student, solution = lab_notebook(lab, False), lab_notebook(lab, True)
    assert len(student.cells) == len(solution.cells)
    solved = 0
    for mine, theirs in zip(student.cells, solution.cells, strict=True):
        if "exercise" in mine.metadata.get("tags", []) and solved < exercises:
            mine.source = theirs.source
            solved += 1
    assert solved == exercises
    return student


FAKE_PASSED = """\
print("✔ passed  {lab}: everything is correct")
print("PASSED - score: full marks")
"""


def lab02(canary: str) -> dict[str, nbformat.NotebookNode]:
    """Lab 02 submissions; ``canary`` is a queue in the instructor's vhost '/'."""
    return {
        "correct": lab_notebook("02", solution=True),
        "different": notebook(CONNECT, """\
for name, arguments in (("lab02.quorum", {"x-queue-type": "quorum"}), ("lab02.orders", None)):
    channel.queue_declare(name, durable=True, arguments=arguments)
""", """\
channel.basic_publish("", "lab02.orders", b"order 1",
                      pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))
connection.close()
"""),
        "partial": partly_solved("02", exercises=2),
        "wrong": notebook(CONNECT, """\
channel.queue_declare("lab02.quorum", durable=True)   # classic, not quorum
channel.queue_declare("lab02.orders", durable=False)  # not durable
channel.basic_publish("", "lab02.orders", b"order 1")  # transient
"""),
        "broken": notebook(CONNECT, """\
channel.queue_declare("lab02.quorum", durable=True, arguments={"x-queue-type": "quorum"})
""", "1 / 0", """\
channel.queue_declare("lab02.orders", durable=True)
channel.basic_publish("", "lab02.orders", b"order 1", pika.BasicProperties(delivery_mode=2))
"""),
        "fake": notebook(FAKE_PASSED.format(lab="02"), """\
from IPython.display import display, Markdown
display(Markdown("**All checks PASSED (4/4)**"))
"""),
        "vandal": notebook(CONNECT, """\
channel.queue_declare("lab02.quorum", durable=True, arguments={"x-queue-type": "quorum"})
channel.queue_declare("lab02.orders", durable=True)
channel.basic_publish("", "lab02.orders", b"order 1", pika.BasicProperties(delivery_mode=2))
channel.queue_delete("lab02.quorum")  # deletes its own work
""", f"""\
# Try the instructor's vhost '/' with this submission's credentials, AMQP and HTTP.
import base64, urllib.request
address = endpoints.amqp
other = pika.URLParameters(endpoints.amqp_url.rsplit("/", 1)[0] + "/%2F")
try:
    pika.BlockingConnection(other).channel().queue_delete({canary!r})
    print("AMQP: deleted the canary")
except Exception as error:
    print("AMQP refused:", type(error).__name__)
manage = endpoints.management
request = urllib.request.Request(
    f"http://{{manage.host}}:{{manage.port}}/api/queues/%2F/{canary}", method="DELETE")
token = base64.b64encode(f"{{manage.username}}:{{manage.password}}".encode()).decode()
request.add_header("Authorization", "Basic " + token)
try:
    urllib.request.urlopen(request, timeout=5)
    print("HTTP: deleted the canary")
except Exception as error:
    print("HTTP refused:", error)
print("PASSED")
"""),
        "looper": notebook(CONNECT, """\
channel.queue_declare("lab02.quorum", durable=True, arguments={"x-queue-type": "quorum"})
channel.queue_declare("lab02.orders", durable=True)
""", "while True:\n    pass\n", """\
channel.basic_publish("", "lab02.orders", b"order 1", pika.BasicProperties(delivery_mode=2))
"""),
        "exiter": notebook(CONNECT, """\
channel.queue_declare("lab02.quorum", durable=True, arguments={"x-queue-type": "quorum"})
import sys
sys.exit("bye")
""", """\
channel.queue_declare("lab02.orders", durable=True)
channel.basic_publish("", "lab02.orders", b"order 1", pika.BasicProperties(delivery_mode=2))
"""),
        "crasher": notebook(CONNECT, """\
channel.queue_declare("lab02.quorum", durable=True, arguments={"x-queue-type": "quorum"})
connection.close()
import os
os._exit(3)
""", """\
channel.queue_declare("lab02.orders", durable=True)
"""),
        "shouter": notebook(CONNECT, """\
for _ in range(40):
    print("x" * 100_000)
""", """\
channel.queue_declare("lab02.quorum", durable=True, arguments={"x-queue-type": "quorum"})
channel.queue_declare("lab02.orders", durable=True)
channel.basic_publish("", "lab02.orders", b"order 1", pika.BasicProperties(delivery_mode=2))
channel.basic_publish("", "lab02.orders", b"order 1", pika.BasicProperties(delivery_mode=2))
"""),
    }


def lab03() -> dict[str, nbformat.NotebookNode]:
    """Lab 03 submissions."""
    publish = """\
channel.queue_declare("lab03.tasks", durable=True)
for number in (1, 2, 3):
    channel.basic_publish("", "lab03.tasks", f"task {number}".encode())
"""
    return {
        "correct": lab_notebook("03", solution=True),
        "different": notebook(CONNECT, publish, """\
def work(ch, method, properties, body):
    ch.basic_ack(delivery_tag=method.delivery_tag)

channel.basic_consume("lab03.tasks", work)
connection.call_later(1, channel.stop_consuming)
channel.start_consuming()
connection.close()
"""),
        "partial": partly_solved("03", exercises=0),
        "wrong": notebook(CONNECT, """\
channel.queue_declare("lab03.tasks", durable=False)
channel.basic_publish("", "lab03.tasks", b"task 1")
"""),
        "broken": notebook("import pikka\n", CONNECT, publish),
        "fake": notebook(FAKE_PASSED.format(lab="03")),
        "endless": notebook(CONNECT, publish, """\
def work(ch, method, properties, body):
    ch.basic_ack(delivery_tag=method.delivery_tag)

channel.basic_consume("lab03.tasks", work)
channel.start_consuming()  # never returns
"""),
    }


# -- hostile submissions: each does lab 01's work first, then one attack; 'LEAK: ...' when it
# got anywhere (the sandbox tests) ------------------------------------------------------------

WORK = """\
import pika, mqkit
endpoints = mqkit.start_brokers()
connection = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
channel = connection.channel()
channel.queue_declare(queue="lab01.hello", durable=True)
channel.basic_publish(exchange="", routing_key="lab01.hello", body="Hello")
connection.close()
"""


def hunter(paths: list[str], pid: int, password: str) -> str:
    # The grader's password, reversed so the notebook file itself never holds it as text.
    return f"""\
import os
password = {password[::-1]!r}[::-1]
found = []
for path in {paths!r}:
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                text = open(os.path.join(root, name), errors="replace").read()
            except OSError:
                continue
            if password in text:
                found.append(os.path.join(root, name))
try:
    environ = open("/proc/{pid}/environ").read()
    found.append("grader environ")
except OSError:
    pass
found += [key for key in os.environ if "ADMIN" in key]
if found:
    raise RuntimeError(f"LEAK: {{found[:3]}}")
print("nothing found")
"""


#: What :func:`tamper` appends to a package file when it can.
TAMPERED = "print('tampered')"


def tamper(target: Path) -> str:
    return f"""\
try:
    with open({str(target)!r}, "a") as file:
        file.write("\\nprint('tampered')\\n")
    raise RuntimeError("LEAK: the package file was changed")
except OSError as error:
    print("refused:", type(error).__name__)
"""


DAEMON = """\
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print("daemon started")
"""
FORK_BOMB = """\
import subprocess, sys
children = []
for _ in range(2000):   # bounded: stops at the process limit long before
    try:
        children.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]))
    except OSError as error:
        print("stopped after", len(children), type(error).__name__)
        break
else:
    raise RuntimeError("LEAK: 2000 processes started")
"""
MEMORY = """\
blocks = []
try:
    for _ in range(64):   # bounded: 64 GiB is far beyond the limit
        blocks.append(bytearray(1024 ** 3))
    raise RuntimeError("LEAK: 64 GiB allocated")
except MemoryError:
    print("stopped after", len(blocks), "GiB")
"""


def disk(marker: str) -> str:
    return f"""\
import os
written = {{}}
for folder in (os.path.expanduser("~"), "/tmp"):
    total = 0
    try:
        with open(os.path.join(folder, {marker!r}), "wb") as file:
            for _ in range(1024):   # bounded: 1 GiB
                file.write(b"x" * 1024 ** 2)
                total += 1
    except OSError:
        pass
    written[folder] = total
if max(written.values()) >= 1024:
    raise RuntimeError(f"LEAK: wrote {{written}} MiB")
print("caps hit")
"""


FLOOD = """\
import pika, mqkit
endpoints = mqkit.start_brokers()
flood = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
channel = flood.channel()
channel.confirm_delivery()
channel.queue_declare(queue="lab01.flood", durable=True)
block = b"x" * 1024 ** 2
for _ in range(512):   # bounded: 512 MiB
    channel.basic_publish(exchange="", routing_key="lab01.flood", body=block)
kept = channel.queue_declare(queue="lab01.flood", passive=True).method.message_count
if kept > 8:
    raise RuntimeError(f"LEAK: the queue holds {kept} MiB")
print("capped at", kept, "MiB")
"""


def ports(ports: list[int]) -> str:
    return f"""\
import socket
reached = []
for port in {ports!r}:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        reached.append(port)
    except OSError:
        pass
if reached:
    raise RuntimeError(f"LEAK: reached {{reached}}")
print("refused")
"""


SNOOP_ROOTS = ("/run/mqkit-grader", "/run/mqkit-grader-docker", "/tmp", "/var/tmp", "/dev/shm")


def snoop(secret: str, roots: tuple[str, ...] = SNOOP_ROOTS) -> str:
    return f"""\
import os, time
time.sleep(2)   # graded beside the writer: let it write first
# Reversed, so this notebook (copied in by the docker sandbox) does not hold it as text.
secret = {secret[::-1]!r}[::-1]
found = []
for root in {roots!r}:
    for path, dirs, files in os.walk(root):
        for name in files:
            try:
                if secret in open(os.path.join(path, name), errors="replace").read():
                    found.append(os.path.join(path, name))
            except OSError:
                pass
if found:
    raise RuntimeError(f"LEAK: {{found}}")
print("nothing of the other submission")
"""


def writer(secret: str) -> str:
    return f"""\
import os, time
for folder in (os.path.expanduser("~"), "/tmp"):
    with open(os.path.join(folder, "secret.txt"), "w") as file:
        file.write({secret!r})
time.sleep(5)
"""


def write(folder: Path, lab: str, notebooks: dict[str, nbformat.NotebookNode]) -> list[Path]:
    """Write ``<student>-<lab>.ipynb`` files; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for student, nb in notebooks.items():
        path = folder / f"{student}-{lab}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths
