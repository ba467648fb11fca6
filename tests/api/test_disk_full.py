"""A full disk, for real: a small tmpfs mounted for the test (root only; skipped otherwise).

The projection's disk full: reads answer 503 and /health says why, writes are still recorded,
and once space is back the projection catches up by itself. The ledger's disk full: an artifact
upload says "no space" (507) and leaves nothing behind, a write stops the server (no unsynced
write is acknowledged), a shutdown that cannot roll the WAL exits non-zero, and nothing
acknowledged is lost once space is back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import API, ServerProcess, mlflow_error

pytestmark = pytest.mark.e2e

RECOVERY_DEADLINE_S = 60  # bounds a hang only


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int):
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=False
    )
    if mounted.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full, to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 4096, 64, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while not predicate():
        assert time.monotonic() < deadline, f"still not {what}"
        time.sleep(0.2)


def metrics(step: int, count: int = 500) -> list[dict]:
    return [
        {"key": f"metric-{i:04d}-" + "k" * 100, "value": 1.0, "timestamp": 1, "step": step}
        for i in range(count)
    ]


def test_projection_disk_full_reads_503_health_says_why_and_it_recovers(tmp_path):
    """The state directory is on the full disk, the WAL (a symlink) is not: only the projection fails."""
    with tmpfs(tmp_path / "state", 24) as state:
        (tmp_path / "wal").mkdir()
        (state / "wal").symlink_to(tmp_path / "wal")
        server = ServerProcess(str(tmp_path / "data"), tmp_path, args=("--state-dir", str(state))).start()
        try:
            http = httpx.Client(base_url=server.url, timeout=60)
            run = http.post(f"{API}/runs/create", json={"experiment_id": "0", "start_time": 1}).json()
            run_id = run["run"]["info"]["run_id"]
            filler = fill(state)
            logged = http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics(1)})
            assert logged.status_code == 200, logged.text  # durable in the WAL, on the other disk
            read = http.get(f"{API}/runs/get", params={"run_id": run_id})
            body = mlflow_error(read, 503, "TEMPORARILY_UNAVAILABLE")
            assert "No space left on device" in body["message"] and str(state) not in body["message"]
            health = http.get("/health")
            assert health.status_code == 503 and "No space left on device" in health.text, health.text
            assert str(state) not in health.text

            filler.unlink()
            wait_for(lambda: http.get("/health").status_code == 200, "healthy after space came back")
            got = http.get(f"{API}/runs/get", params={"run_id": run_id})
            assert got.status_code == 200 and len(got.json()["run"]["data"]["metrics"]) == 500
            http.close()
        finally:
            code = server.stop()
        assert code == 0, server.read_log()


def test_ledger_disk_full_no_space_answers_and_nothing_acknowledged_is_lost(tmp_path):
    with tmpfs(tmp_path / "disk", 24) as disk:
        server = ServerProcess(str(disk / "data"), tmp_path).start()
        http = httpx.Client(base_url=server.url, timeout=60)
        run_id = http.post(f"{API}/runs/create", json={"experiment_id": "0", "start_time": 1}).json()["run"][
            "info"
        ]["run_id"]
        assert (
            http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics(1)}).status_code
            == 200
        )
        filler = fill(disk)

        upload = http.put(
            f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/big.bin", content=b"x" * (4 << 20)
        )
        assert "No space left" in mlflow_error(upload, 507, "INSUFFICIENT_STORAGE")["message"]
        leftovers = [p.name for p in (disk / "data").rglob(".tl-upload-*")]
        assert leftovers == []

        # SIGTERM now: rolling the WAL into a segment needs space that is not there.
        code = server.stop()
        assert code != 0, server.read_log()
        filler.unlink()

        server.start()
        got = httpx.get(server.url + f"{API}/runs/get", params={"run_id": run_id}, timeout=60)
        assert got.status_code == 200 and len(got.json()["run"]["data"]["metrics"]) == 500

        filler = fill(disk)
        with contextlib.suppress(httpx.HTTPError):  # the server stops rather than acknowledge it
            httpx.post(
                server.url + f"{API}/runs/log-batch",
                json={"run_id": run_id, "metrics": metrics(2)},
                timeout=60,
            )
        server.proc.wait(timeout=60)
        server.log.close()
        assert server.proc.returncode == 70, server.read_log()
        assert "stopping the server so no unsynced write is acknowledged" in server.read_log()
        http.close()

        filler.unlink()
        server.start()
        got = httpx.get(server.url + f"{API}/runs/get", params={"run_id": run_id}, timeout=60)
        assert got.status_code == 200 and len(got.json()["run"]["data"]["metrics"]) == 500
        assert server.stop() == 0, server.read_log()


def test_the_fill_helper_fills(tmp_path):
    with tmpfs(tmp_path / "disk", 1) as disk:
        fill(disk)
        with pytest.raises(OSError) as full:
            (disk / "more").write_bytes(b"x" * 8192)
        assert full.value.errno == errno.ENOSPC
