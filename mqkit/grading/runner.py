"""Run one notebook headless in its own kernel process, with timeouts and capped output.

Every code cell runs in order in a fresh ``python3`` kernel (a separate process) whose
environment the grader chooses. A cell that raises is recorded and the next cells still
run, as a student running *Run all* past an error would; a cell that exceeds its timeout
(or the notebook's overall time budget) ends the run and the kernel is killed; a kernel
that dies (``os._exit``, a crash) ends the run too. Output is only kept up to a cap, so a
notebook printing megabytes cannot exhaust the grader's memory. What the notebook printed
is never used for scoring: the report only explains what happened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqkit.grading.sandbox import Confinement

log = logging.getLogger(__name__)

#: Bytes of stream output kept per notebook; the rest is counted and dropped.
OUTPUT_CAP = 256 * 1024


@dataclass(frozen=True)
class RunReport:
    """What happened when a notebook ran.

    Attributes:
        outcome: ``completed``, ``errors`` (cells raised, the run went on), ``timed-out``,
            ``kernel-died`` or ``not-run`` (not a readable notebook / no kernel).
        reason: one sentence for the gradebook ('' when every cell ran cleanly).
        cells_run: code cells that were executed (including the one that failed or hung).
        code_cells: code cells in the notebook.
        output_bytes: stream output bytes the notebook produced.
        output_dropped: bytes beyond :data:`OUTPUT_CAP` that were not kept.
        seconds: wall time of the run.
    """

    outcome: str
    reason: str
    cells_run: int
    code_cells: int
    output_bytes: int = 0
    output_dropped: int = 0
    seconds: float = 0.0


def _client_class() -> type:
    from mqkit.optional import import_optional

    NotebookClient = import_optional("nbclient", "grading notebooks").NotebookClient

    class CappedClient(NotebookClient):  # type: ignore[misc]
        """A NotebookClient that keeps at most ``OUTPUT_CAP`` bytes of stream output."""

        output_bytes = 0
        output_dropped = 0

        def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None,
                   cell_index: int) -> Any:
            if msg["msg_type"] == "stream":
                text = msg["content"].get("text", "")
                size = len(text.encode(errors="replace"))
                room = max(0, OUTPUT_CAP - self.output_bytes)
                self.output_bytes += size
                if size > room:
                    self.output_dropped += size - room
                    if not room:
                        return None
                    kept = text.encode(errors="replace")[:room].decode(errors="ignore")
                    msg = {**msg, "content": {**msg["content"], "text": kept}}
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def _confined_manager(confinement: Confinement) -> type:
    """A kernel manager that launches the kernel through the sandbox's wrapper.

    The connection file (ports and the HMAC key) goes into the session's folder, owned by
    the sandbox user, so the kernel can read it and no other submission can.
    """
    import secrets

    from jupyter_client.manager import AsyncKernelManager

    class ConfinedKernelManager(AsyncKernelManager):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            assert confinement.connection_dir is not None
            self.connection_file = str(confinement.connection_dir
                                       / f"kernel-{secrets.token_hex(8)}.json")
            if confinement.ipc:
                # The kernel's network namespace cannot reach ours: Unix sockets can.
                self.transport = "ipc"
                self.ip = str(confinement.connection_dir / "zmq")

        def write_connection_file(self, **kwargs: Any) -> None:
            super().write_connection_file(**kwargs)
            if confinement.owner is not None:
                os.chown(self.connection_file, *confinement.owner)

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [*confinement.command_prefix, *super().format_kernel_cmd(extra_arguments)]

    return ConfinedKernelManager


def _last_line(path: Path | None, limit: int = 160) -> str:
    """The last non-blank line of a file (its end only is read), or ''."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 4096))
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def _first_line(text: str, limit: int = 160) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_notebook(path: Path, env: dict[str, str], *, cell_timeout: float = 60.0,
                 total_timeout: float = 300.0, workdir: Path | None = None,
                 after_cell: Callable[[str], None] | None = None,
                 confinement: Confinement | None = None) -> RunReport:
    """Execute the notebook at ``path`` in a fresh kernel with environment ``env``.

    Args:
        path: the notebook.
        env: the kernel's complete environment.
        cell_timeout: seconds one cell may run.
        total_timeout: seconds the whole notebook may run.
        workdir: the kernel's working directory (default: the notebook's folder).
        after_cell: called with a cell's source after it ran (raised or not) while the
            kernel still runs; not after a cell that timed out or killed the kernel.
        confinement: how a sandbox wants the kernel launched (``None``: as this process's
            user, like any child process).

    Returns:
        A :class:`RunReport`; never raises for anything the notebook does.
    """
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    start = time.monotonic()
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:
        return RunReport("not-run", f"not a readable notebook: {_first_line(str(exc))}", 0, 0)
    cells = [(index, cell) for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code"]
    client = _client_class()(
        notebook, timeout=max(1, round(cell_timeout)), kernel_name="python3",
        allow_errors=True, interrupt_on_timeout=False, shutdown_kernel="immediate",
        record_timing=False, iopub_timeout=4, startup_timeout=60,
        resources={"metadata": {"path": str(workdir or path.parent)}})
    if confinement is not None and confinement.command_prefix:
        client.kernel_manager_class = _confined_manager(confinement)
    errors: list[str] = []
    outcome, reason, cells_run = "completed", "", 0

    def finish() -> RunReport:
        return RunReport(outcome, reason, cells_run, len(cells), client.output_bytes,
                         client.output_dropped, time.monotonic() - start)

    # The kernel's own stdout/stderr (warnings, a flood from C code) are not the cells'
    # output: they go nowhere rather than to the grader's terminal. In a sandbox, stderr goes
    # to a capped file instead: when the kernel dies at start, its last line says why.
    stderr_log = (confinement.connection_dir / "kernel-stderr.log"
                  if confinement is not None and confinement.connection_dir is not None
                  else None)
    try:
        with contextlib.ExitStack() as stack:
            stderr = (stack.enter_context(open(stderr_log, "wb")) if stderr_log is not None
                      else subprocess.DEVNULL)
            stack.enter_context(client.setup_kernel(env=env, stdout=subprocess.DEVNULL,
                                                    stderr=stderr))
            if confinement is not None and confinement.census is not None:
                # Counted while the kernel still runs: what the notebook left running.
                census = confinement.census
                stack.callback(lambda: setattr(confinement, "leftovers", census()))
            for number, (index, cell) in enumerate(cells, start=1):
                remaining = total_timeout - (time.monotonic() - start)
                if remaining <= 1:
                    outcome = "timed-out"
                    reason = (f"the notebook used its {total_timeout:.0f} s before cell "
                              f"{number}")
                    return finish()
                client.timeout = max(1, round(min(cell_timeout, remaining)))
                cells_run = number
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    outcome = "timed-out"
                    reason = (f"timed out in cell {number} (after {client.timeout} s); "
                              "the kernel was stopped")
                    return finish()
                except DeadKernelError:
                    outcome = "kernel-died"
                    reason = f"the kernel died in cell {number}"
                    return finish()
                error = next((o for o in cell.get("outputs", [])
                              if o.get("output_type") == "error"), None)
                if error is not None:
                    errors.append(f"cell {number}: {error.get('ename', 'Error')}: "
                                  f"{_first_line(str(error.get('evalue', '')))}")
                if after_cell is not None:
                    after_cell(cell.source)
    except DeadKernelError:
        outcome, reason = "kernel-died", f"the kernel died in cell {max(cells_run, 1)}"
        return finish()
    except Exception as exc:  # a kernel that cannot start, a broken client: report it
        log.warning("running %s failed: %r", path, exc)
        outcome = "not-run" if cells_run == 0 else "kernel-died"
        reason = f"the notebook could not run: {type(exc).__name__}: {_first_line(str(exc))}"
        said = _last_line(stderr_log)
        if said:
            reason += f" (the kernel said: {said})"
        return finish()
    if errors:
        outcome = "errors"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        reason = f"error in {errors[0]}{more}"
    return finish()
