"""A real ``mlflow server`` (SQLite backend, local artifacts) holding a varied history, and helpers
to run ``trackledger import``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port

HERE = Path(__file__).resolve().parent
STARTUP_DEADLINE_S = (
    300  # mlflow server takes ~20 s to start, minutes on a crowded machine; only bounds a hang
)

os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"


@dataclass
class MlflowSource:
    url: str
    db: Path
    artifacts: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db}"


@contextlib.contextmanager
def mlflow_server(workdir: Path) -> Iterator[MlflowSource]:
    """``mlflow server`` (SQLite backend, local artifacts) in ``workdir``, empty."""
    db, artifacts = workdir / "mlflow.db", workdir / "artifacts"
    port = free_port()
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            assert proc.poll() is None, (workdir / "server.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.2)
        yield MlflowSource(url, db, artifacts)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


@pytest.fixture(scope="session")
def mlflow_source(tmp_path_factory):
    """``mlflow server`` with the history of ``mlflow_history.py`` logged into it."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as source:
        subprocess.run([sys.executable, str(HERE / "mlflow_history.py"), source.url], check=True, timeout=600)
        yield source


def trackledger(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trackledger", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
