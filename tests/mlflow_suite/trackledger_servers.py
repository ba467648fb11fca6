"""Server-start helpers that start ``trackledger server`` where MLflow's tests start MLflow's own.

``run.py`` copies this module into a copy of an MLflow checkout's ``tests/tracking/`` and rebinds
the helpers' names to these at the end of ``integration_test_utils.py`` (``_init_server``,
``ServerThread``) and ``test_mlflow_artifacts.py`` (``_launch_server``). Nothing else of MLflow's
tests changes: the backend-store and artifact-root URIs they pass are ignored (trackledger keeps its
own store in a temporary folder), except ``artifacts_destination``, which becomes ``--artifacts``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import requests

HOST = "127.0.0.1"
STARTUP_DEADLINE_S = 60


class _TrackledgerProcess:
    def __init__(self, port: int, *, artifacts: str | None = None, extra_env: dict[str, Any] | None = None):
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.workdir = tempfile.mkdtemp(prefix="trackledger-mlflow-suite-")
        cmd = [sys.executable, "-m", "trackledger", "server", "--host", HOST, "--port", str(port)]
        cmd += ["--store", os.path.join(self.workdir, "store")]
        if artifacts:
            cmd += ["--artifacts", artifacts]
        env = {**os.environ, **{k: str(v) for k, v in (extra_env or {}).items()}}
        self.log = open(os.path.join(self.workdir, "server.log"), "ab")  # noqa: SIM115 (closed in stop)
        # In the tests' working directory, as MLflow's own server: a relative artifact location
        # resolves from there.
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self) -> str:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trackledger server exited with {self.proc.returncode}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/health", timeout=1).ok:
                    return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"trackledger server did not become healthy on {self.url}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _init_server(backend_uri, root_artifact_uri, extra_env=None, app=None, server_type="fastapi"):
    import mlflow

    mlflow.set_tracking_uri(None)
    server = _TrackledgerProcess(_free_port(), extra_env=extra_env)
    try:
        yield server.wait_healthy()
    finally:
        server.stop()


class ServerThread:
    """MLflow's in-process server thread, replaced by a trackledger process; ``app`` is ignored."""

    def __init__(self, app, port: int):
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._server: _TrackledgerProcess | None = None

    def __enter__(self) -> str:
        self._server = _TrackledgerProcess(self.port)
        return self._server.wait_healthy()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._server is not None:
            self._server.stop()


@contextlib.contextmanager
def _launch_server(host, port, backend_store_uri, default_artifact_root, artifacts_destination):
    server = _TrackledgerProcess(port, artifacts=artifacts_destination)
    try:
        server.wait_healthy()
        yield server.proc
    finally:
        server.stop()
