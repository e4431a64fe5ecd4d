"""`mqkit grade` runs each check right after its self-check cell, while the kernel still runs.

A server that the notebook runs in a background thread exists only while the kernel lives:
the RPC check must meet it there. The same notebook without the self-check cell is checked
after the run, when the server is gone, and fails: the timing is what the test proves.
"""

from __future__ import annotations

import pytest

from mqkit.grading.grader import grade
from tests.grading import submissions
from tests.grading.submissions import CONNECT
from tests.grading.test_grader import SANDBOX

pytestmark = pytest.mark.integration

# A minimal RPC server for lab 08's check: it answers fib(n) to reply_to with the
# request's correlation_id, in a thread with its own connection.
SERVER = """\
import threading

def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

stopping = threading.Event()
ready = threading.Event()

def serve():
    server = pika.BlockingConnection(pika.URLParameters(endpoints.amqp_url))
    ch = server.channel()
    ch.queue_declare("lab08.requests", durable=True)
    for method, properties, body in ch.consume("lab08.requests", inactivity_timeout=0.1):
        ready.set()
        if stopping.is_set():
            break
        if method is None:
            continue
        ch.basic_publish("", properties.reply_to, str(fib(int(body))).encode(),
                         pika.BasicProperties(correlation_id=properties.correlation_id))
        ch.basic_ack(method.delivery_tag)
    server.close()

thread = threading.Thread(target=serve, daemon=True)
thread.start()
ready.wait(10)
"""
SELF_CHECK = """\
from mqkit.grading import self_check
self_check("08.rpc-server", endpoints)
"""
STOP = """\
stopping.set()
thread.join(5)
print("server stopped:", not thread.is_alive())
"""


@pytest.fixture(scope="module")
def graded(brokers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("after-cell")
    paths = submissions.write(folder / "in", "08", {
        "checked-in-place": submissions.notebook(CONNECT, SERVER, SELF_CHECK, STOP),
        "no-self-check-cell": submissions.notebook(CONNECT, SERVER, STOP),
    })
    gradebook = grade("08", paths, timeout=20, broker=brokers, workers=2, sandbox=SANDBOX)
    return {item.submission.student: item for item in gradebook.submissions}


def test_a_check_meets_the_server_the_kernel_still_runs(graded) -> None:
    item = graded["checked-in-place"]
    (result,) = [r for r in item.results if r.check_id == "08.rpc-server"]
    assert result.is_passed, result.line()
    assert item.run.outcome == "completed", item.run.reason


def test_without_its_cell_the_check_runs_after_the_kernel_is_gone(graded) -> None:
    item = graded["no-self-check-cell"]
    (result,) = [r for r in item.results if r.check_id == "08.rpc-server"]
    assert not result.is_passed
    assert "no server consumes" in result.message


def test_the_kernel_leaves_the_verdict_to_the_grader(brokers, monkeypatch) -> None:
    # In a graded kernel the self-check does not act (it might stop a worker on purpose):
    # it says so, and the grader's own run is what counts.
    from mqkit.grading import Status, self_check
    from mqkit.grading.registry import GRADER_RUNS_CHECKS

    monkeypatch.setenv(GRADER_RUNS_CHECKS, "1")
    result = self_check("00.brokers-reachable", brokers)
    assert result.status is Status.DEFERRED
    assert result.line().startswith("… left to the grader  00.brokers-reachable")
    monkeypatch.delenv(GRADER_RUNS_CHECKS)
    assert self_check("00.brokers-reachable", brokers).is_passed
