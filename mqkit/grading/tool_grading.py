"""Grading with an outside tool (nbgrader, Otter): a namespace per submission, the totals.

nbgrader and Otter run a submission's notebook in a process of their own. :func:`tool_runs`
gives each submission in turn a fresh namespace (vhost, scoped user, own Mosquitto) made in
this process, a scratch home, and the environment for the tool's process: the grader's
without any ``MQKIT_*`` variable, plus the namespace's, so the tool and the kernel it starts
never hold an administrator's credentials. That kernel is not sandboxed (see
``docs/grading.md``).

Example:
    for run in tool_runs(broker, ["alice", "bob"], with_mqtt=True, prefix="mqkit-otter-"):
        done, error = run.command([sys.executable, "-m", "otter", ...], cwd=run.home)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mqkit.endpoints import Endpoints


@dataclass(frozen=True)
class Score:
    """One submission's total as the tool computed it.

    Attributes:
        student: the student.
        points: the points scored.
        max_points: the points there were (0 when the tool could not grade it).
        error: the tool's last error line when it could not grade it, else empty.
    """

    student: str
    points: float
    max_points: float
    error: str = ""


@dataclass(frozen=True)
class ToolRun:
    """One submission's turn: its student, the tool's environment and a scratch home.

    Attributes:
        student: the student (the namespace's label).
        env: the environment of the tool's process.
        home: a scratch folder, the tool's ``HOME``, removed with the namespace.
    """

    student: str
    env: dict[str, str]
    home: Path

    def command(self, argv: Sequence[str], *, cwd: Path | str
                ) -> tuple[subprocess.CompletedProcess[str], str]:
        """Run the tool in this turn's environment; its process and its error.

        Returns:
            The finished process, and when it failed its last line on stderr (or its exit
            status), else an empty string.
        """
        done = subprocess.run(list(argv), cwd=cwd, env=self.env, capture_output=True,
                              text=True, check=False)
        if done.returncode == 0:
            return done, ""
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return done, lines[-1] if lines else f"exit {done.returncode}"


@contextlib.contextmanager
def tool_run(broker: Endpoints, student: str, *, with_mqtt: bool, prefix: str,
             mosquitto_binary: str) -> Iterator[ToolRun]:
    """One student's :class:`ToolRun`: a namespace and a scratch home, removed on exit.

    Runs of different students may be open at once (one per worker thread).
    """
    from mqkit.grading.grader import kernel_environment
    from mqkit.grading.namespace import Namespace

    with Namespace.create(broker, student, with_mqtt=with_mqtt,
                          mosquitto_binary=mosquitto_binary) as space, \
            tempfile.TemporaryDirectory(prefix=prefix) as home:
        env = kernel_environment(space.environment(), Path(home))
        # The tools run programs beside this Python (nbgrader runs `alembic`).
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent),
                                       env.get("PATH", os.defpath)))
        yield ToolRun(student, env, Path(home))


def instructor_brokers(broker: Endpoints | None) -> Endpoints:
    """``broker``, or the brokers of :func:`mqkit.start_brokers` when none is given."""
    if broker is not None:
        return broker
    from mqkit.brokers.launcher import start_brokers

    return start_brokers()


def tool_runs(broker: Endpoints | None, students: Iterable[str], *, with_mqtt: bool,
              prefix: str) -> Iterator[ToolRun]:
    """A :class:`ToolRun` per student, one at a time, each in a namespace of its own.

    A student's namespace and home are removed when the next student's are asked for, or
    when the loop ends.

    Args:
        broker: the instructor's brokers (default: :func:`mqkit.start_brokers`).
        students: whose turns, in order.
        with_mqtt: give each submission its own Mosquitto.
        prefix: the scratch homes' name prefix (``mqkit-otter-``).
    """
    from mqkit.config import Settings

    broker = instructor_brokers(broker)
    binary = Settings.from_env().mosquitto_binary
    for student in students:
        with tool_run(broker, student, with_mqtt=with_mqtt, prefix=prefix,
                      mosquitto_binary=binary) as run:
            yield run


def write_scores(scores: Iterable[Score], tool: str, out: TextIO) -> int:
    """Write a line per score for a command line (``alice  3/5``); 1 if any failed, else 0."""
    failed = 0
    for score in scores:
        note = f"  ({tool} failed: {score.error})" if score.error else ""
        failed += bool(score.error)
        out.write(f"{score.student:<20} {score.points:g}/{score.max_points:g}{note}\n")
    return 1 if failed else 0
