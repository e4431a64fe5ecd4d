"""Start a JupyterLab server for a test and wait until it answers (no fixed sleeps)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mqkit.brokers.ports import free_port


@dataclass(frozen=True)
class JupyterServer:
    """A running Jupyter server: its base URL, token and process."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, headers: Mapping[str, str] | None = None,
            timeout: float = 10) -> tuple[int, bytes]:
        """GET ``path`` (token as a query argument, so ``headers`` may carry Basic auth)."""
        sep = "&" if "?" in path else "?"
        request = urllib.request.Request(f"{self.url}{path}{sep}token={self.token}",
                                         headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def start_kernel(self, notebook: str, kernel: str = "python3") -> dict:
        """Open a session for ``notebook`` with ``kernel`` (JupyterLab then asks no question)."""
        request = urllib.request.Request(
            f"{self.url}/api/sessions", method="POST",
            data=json.dumps({"path": notebook, "name": notebook, "type": "notebook",
                             "kernel": {"name": kernel}}).encode(),
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def api(self, method: str, path: str, timeout: float = 30) -> Any:
        """Call the server's REST API (``/api/...``) with the token; the decoded JSON or None."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def shut_down_sessions(self) -> None:
        """End every session and its kernel (a lab's background consumers stop with it)."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")


def wait_for_status(url: str, token: str, process: subprocess.Popen[bytes], log: Path,
                    timeout: float = 60) -> dict:
    """Poll ``/api/status`` until it answers 200; fail early when the server exits."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"jupyter exited with {process.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        try:
            request = urllib.request.Request(f"{url}/api/status",
                                             headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return json.loads(response.read())
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.2)  # polling interval, not a readiness assumption
    raise AssertionError(f"jupyter did not answer /api/status within {timeout}s ({last!r}):\n"
                         f"{log.read_text(errors='replace')[-3000:]}")


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process group (server, kernels, proxied processes), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    # Children that outlived the server (kernels, the proxy forwarder) share its group.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def jupyter_lab(root: Path, env: Mapping[str, str], log: Path,
                notebook_settings: Mapping[str, object] | None = None,
                ) -> Iterator[JupyterServer]:
    """JupyterLab on 127.0.0.1, a free port and a random token, serving ``root``.

    ``notebook_settings`` adds to the notebook tracker's settings, e.g.
    ``{"windowingMode": "none"}`` so every cell of a long notebook stays in the DOM.
    """
    port = free_port()
    token = os.urandom(16).hex()
    runtime = root.parent / f"{root.name}-jupyter-runtime"
    runtime.mkdir(exist_ok=True)
    child_env = dict(env)
    # A clean Jupyter: no user settings or workspaces from the developer's home.
    child_env.update(JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(runtime / "config"),
                     JUPYTERLAB_WORKSPACES_DIR=str(runtime / "workspaces"),
                     JUPYTERLAB_SETTINGS_DIR=str(runtime / "settings"))
    # No "get notified about Jupyter news?" prompt over the screenshots.
    news = runtime / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # No "Select Kernel" dialog: the notebook's own kernel starts by itself.
    tracker = runtime / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    tracker_settings = {"autoStartDefaultKernel": True, **(notebook_settings or {})}
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps(tracker_settings))
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI runs as root
        command.append("--allow-root")
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=root, env=child_env, stdout=sink,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_status(url, token, process, log)
        yield JupyterServer(url, token, process, log)
    finally:
        stop_process_group(process)
