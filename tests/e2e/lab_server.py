"""A throw-away JupyterLab server for the end-to-end test.

It runs from the current interpreter (the course venv), listens on 127.0.0.1
on a free port with a random token, and keeps its config, runtime, settings,
workspaces and user data under one temporary directory, so that a learner's
own settings and extensions do not leak in.  The venv's ``share/jupyter``
(where the ipywidgets lab extension ships prebuilt) stays on the search path.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# User settings written into the isolated settings directory.
LAB_SETTINGS = {
    # Render every cell (the default virtualises off-screen cells away).
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No "official Jupyter news?" toast over the notebook, no web requests.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}

# Variables through which a learner's own setup would reach the server or kernel.
LEAKY_ENV = ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_PREFER_ENV_PATH", "MPLBACKEND")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """Start with ``start()``, stop with ``stop()`` (idempotent, kills kernels too)."""

    def __init__(self, root_dir, state_dir):
        self.root_dir = Path(root_dir)
        self.state = Path(state_dir)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.state / "jupyter.log"
        self.proc = None

    def _env(self):
        env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
        dirs = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTER_DATA_DIR": "data",
            "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
            "IPYTHONDIR": "ipython",
        }
        for var, sub in dirs.items():
            env[var] = str(self.state / sub)
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        for plugin, values in LAB_SETTINGS.items():
            path = self.state / "settings" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return env

    def start(self, timeout=60):
        """Launch the server and wait until its REST API answers."""
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root_dir, env=self._env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")

    def api(self, method, path, timeout=10):
        """Call the server's REST API; return the decoded JSON body (or None)."""
        req = urllib.request.Request(self.base_url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def url(self, path):
        """Browser URL of ``path`` in a fresh (reset) workspace, logged in by token."""
        quoted = urllib.request.pathname2url(str(path))
        return f"{self.base_url}/lab/tree/{quoted}?reset&token={self.token}"

    def shutdown_kernels(self):
        """Delete every session, which shuts its kernel down."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self):
        """Shut kernels and server down politely, then by signal if needed."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.shutdown_kernels()
            self.api("POST", "/api/shutdown", timeout=5)
            self.proc.wait(timeout=15)
        except Exception:  # noqa: BLE001 - whatever went wrong, fall back to signals
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=wait)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
