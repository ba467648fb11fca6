"""The artifact proxy over raw HTTP: paths that try to escape, MLflow's listing rules, mistakes
answered with 400s, downloads that never run as pages, and streaming in bounded memory."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time

import psutil
import pytest

from tests.api.conftest import ledger_events, mlflow_error

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/2.0/mlflow-artifacts/artifacts/../../etc/passwd",
        "/api/2.0/mlflow-artifacts/artifacts/1/%2e%2e/%2e%2e/x",
        "/api/2.0/mlflow-artifacts/artifacts/1/%252e%252e/x",
        "/api/2.0/mlflow-artifacts/artifacts//etc/passwd",
        "/api/2.0/mlflow-artifacts/artifacts/1/a%5c..%5cb",
    ],
)
def test_artifact_path_escapes_are_refused(server, raw_path):
    host, port = server.url.removeprefix("http://").split(":")
    for method in ("PUT", "GET"):
        with socket.create_connection((host, int(port))) as sock:  # raw: clients normalise '..' away
            request = (
                f"{method} {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Connection: close\r\nContent-Length: 2\r\n\r\nhi"
            )
            sock.sendall(request.encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.split()[1] in (b"400", b"404"), reply
    assert not (server.workdir.parent / "x").exists()


def test_artifact_listing_rules_and_chunked_upload(http, run_id):
    base = "/api/2.0/mlflow-artifacts/artifacts"
    path = f"1/{run_id}/artifacts"

    def chunks():
        yield b"part one, "
        yield b"part two"

    assert http.put(f"{base}/{path}/dir/chunked.txt", content=chunks()).status_code == 200
    assert http.get(f"{base}/{path}/dir/chunked.txt").content == b"part one, part two"
    listing = http.get(base, params={"path": f"{path}/dir"}).json()
    assert listing == {"files": [{"path": "chunked.txt", "is_dir": False, "file_size": 18}]}
    assert http.get(base, params={"path": f"{path}/dir/chunked.txt"}).json() == {}
    assert http.get(base, params={"path": f"{path}/missing"}).json() == {}
    assert http.get(base, params={"path": path}).json() == {"files": [{"path": "dir", "is_dir": True}]}
    mlflow_error(http.get(f"{base}/{path}/nope.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    written = [e for e in ledger_events(http, type="artifact_written") if e["path"].endswith("chunked.txt")]
    assert written[0]["size"] == 18 and written[0]["run_id"] == run_id and len(written[0]["sha256"]) == 64
    assert http.delete(f"{base}/{path}/dir/chunked.txt").status_code == 200
    assert http.get(base, params={"path": f"{path}/dir"}).json() == {}


def test_artifact_mistakes_are_400s_and_downloads_never_run_as_pages(http, run_id):
    base = f"/api/2.0/mlflow-artifacts/artifacts/1/{run_id}/artifacts"
    before = ledger_events(http, type="artifact_written")
    assert http.put(f"{base}/file.txt", content=b"x").status_code == 200
    for bad in (f"{base}/file.txt/child.txt", f"{base}/{'n' * 256}.txt", f"{base}/folder/", f"{base}/a%0Db"):
        mlflow_error(http.put(bad, content=b"y"), 400, "INVALID_PARAMETER_VALUE")
    mlflow_error(http.get(f"{base}/{'n' * 256}.txt"), 400, "INVALID_PARAMETER_VALUE")
    assert len(ledger_events(http, type="artifact_written")) == len(before) + 1
    assert http.delete(f"{base}/never-written.txt").status_code == 200  # as in MLflow
    # Pages and scripts come back as plain text, never sniffed; any file name survives the header.
    pages = {"page.HTML": "text/plain", '数据 "q".svg': "text/plain", "x.svgz": "application/octet-stream"}
    for name, media in pages.items():
        body = b"<svg onload=alert(1)/>"
        assert http.put(f"{base}/{name}", content=body).status_code == 200
        resp = http.get(f"{base}/{name}")
        assert resp.status_code == 200 and resp.content == body
        assert resp.headers["content-type"].split(";")[0] == media
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["content-disposition"].startswith("attachment;")
    disposition = http.get(f'{base}/数据 "q".svg').headers["content-disposition"]
    assert "filename*=UTF-8''%E6%95%B0%E6%8D%AE%20%22q%22.svg" in disposition
    assert http.put(f"{base}/empty.bin", content=b"").status_code == 200
    listing = http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": f"1/{run_id}/artifacts"}).json()
    assert {"path": "empty.bin", "is_dir": False} in listing["files"]  # no size, as MLflow lists it
    root = http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "."}).json()
    assert root == http.get("/api/2.0/mlflow-artifacts/artifacts").json() and root["files"]


class PeakRss:
    """The highest RSS a process reaches while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.start = self.peak = self.process.memory_info().rss

    def __enter__(self) -> PeakRss:
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc_info) -> None:
        self._running = False
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def test_large_artifact_streams_both_ways_in_bounded_memory(server, http, run_id):
    """512 MiB up and down: a server that held a whole file in memory would grow by at least that."""
    size_mib = 512
    block = hashlib.sha256(b"seed").digest() * (2**20 // 32)

    def body():
        for i in range(size_mib):
            yield i.to_bytes(8, "big") + block[8:]

    expected = hashlib.sha256()
    for chunk in body():
        expected.update(chunk)
    url = f"/api/2.0/mlflow-artifacts/artifacts/1/{run_id}/artifacts/big.bin"
    with PeakRss(server.proc.pid) as upload:
        assert http.put(url, content=body(), timeout=600).status_code == 200
    received, size = hashlib.sha256(), 0
    with PeakRss(server.proc.pid) as download, http.stream("GET", url, timeout=600) as resp:
        assert resp.status_code == 200
        assert int(resp.headers["content-length"]) == size_mib * 2**20
        for chunk in resp.iter_bytes():
            received.update(chunk)
            size += len(chunk)
    assert size == size_mib * 2**20 and received.hexdigest() == expected.hexdigest()
    (written,) = [e for e in ledger_events(http, type="artifact_written") if e["path"].endswith("big.bin")]
    assert written["size"] == size_mib * 2**20 and written["sha256"] == expected.hexdigest()
    bound = 128 * 2**20
    assert upload.growth < bound, f"upload grew the server by {upload.growth / 2**20:.0f} MiB"
    assert download.growth < bound, f"download grew the server by {download.growth / 2**20:.0f} MiB"
