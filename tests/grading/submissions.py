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


def write(folder: Path, lab: str, notebooks: dict[str, nbformat.NotebookNode]) -> list[Path]:
    """Write ``<student>-<lab>.ipynb`` files; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for student, nb in notebooks.items():
        path = folder / f"{student}-{lab}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths
