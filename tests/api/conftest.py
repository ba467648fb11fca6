"""A real ``trackledger server`` subprocess on a free loopback port, and mlflow clients pointed at it;
or the same application in this process (``in_process``), for quick tests of validation and errors."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
API = "/api/2.0/mlflow"
SERVER_CMD = [sys.executable, "-m", "trackledger", "server"]
STARTUP_DEADLINE_S = 60  # only bounds a hung start-up; no assertion depends on timing

# A server mistake must fail a test at once, not after minutes of client retries.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m trackledger server`` with the given flags: ``start``, ``stop``, ``kill``, start again."""

    def __init__(
        self,
        store: str,
        workdir: Path,
        *,
        args: tuple[str, ...] = (),
        env: dict | None = None,
        port: int | None = None,
    ):
        self.store = store
        self.port = port  # fixed, so clients find it again after a restart; else a free one per start
        self.workdir = workdir
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = workdir / "server.log"

    def start(self) -> ServerProcess:
        port = self.port or free_port()
        cmd = [*SERVER_CMD, "--store", self.store, "--port", str(port), *self.args]
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop/kill)
        self.proc = subprocess.Popen(
            cmd, cwd=self.workdir, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not become healthy:\n{self.read_log()}")

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> int:
        """SIGTERM and wait: a clean shutdown rolls the WAL into a segment."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.log.close()


def trackledger(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m trackledger ARGS``; ``env`` is added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "trackledger", *args],
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@contextlib.contextmanager
def in_process(store: Path, raise_server_exceptions: bool = True, **settings) -> Iterator:
    """An httpx client of the ASGI app in this process, its lifespan run (the store opened and closed
    as by the server); ``settings`` as for ``Settings``. ``raise_server_exceptions=False`` answers
    an unexpected exception as the server does, instead of raising it in the test."""
    from starlette.testclient import TestClient
    from trackledger.api.app import create_app
    from trackledger.api.settings import Settings

    # The loopback address as Host: "testserver", TestClient's default, is not an allowed host.
    app = create_app(Settings(store=str(store), **settings))
    with TestClient(
        app, base_url="http://127.0.0.1", raise_server_exceptions=raise_server_exceptions
    ) as client:
        yield client


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server per test module, on a fresh local store."""
    workdir = tmp_path_factory.mktemp("server")
    proc = ServerProcess(str(workdir / "data"), workdir).start()
    yield proc
    if proc.proc.poll() is None:
        assert proc.stop() == 0, proc.read_log()


@pytest.fixture(scope="module")
def client(server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server.url)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def run_id(http):
    """A run whose claimed user is carol, in an experiment of its own."""
    exp = http.post(f"{API}/experiments/create", json={"name": "http-tests"}).json()["experiment_id"]
    body = {"experiment_id": exp, "start_time": 1, "tags": [{"key": "mlflow.user", "value": "carol"}]}
    return http.post(f"{API}/runs/create", json=body).json()["run"]["info"]["run_id"]


def ledger_events(http, **params) -> list[dict]:
    """The server's events (``/api/ledger/events``), filtered by ``params``."""
    return http.get("/api/ledger/events", params={"limit": 10000, **params}).json()["events"]


def mlflow_error(resp, status: int, code: str) -> dict:
    """The body of an MLflow error answer with this status and error code."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error_code"] == code, body
    assert body["message"]
    return body
