"""Deleting artifacts is a ledger event: who, which files, their sizes and hashes; the
``artifacts`` table and the audit page follow it, and a rebuild derives the same."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.api.conftest import API, ServerProcess, ledger_events, trackledger

pytestmark = pytest.mark.e2e

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
SNAPSHOT = (
    "SELECT path, run_id, size, sha256 FROM artifacts ORDER BY path",
    "SELECT type, actor, run_id, summary FROM events ORDER BY writer, seq",
)


@pytest.fixture
def server(tmp_path):
    proc = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    yield proc
    if proc.proc.poll() is None:
        assert proc.stop() == 0, proc.read_log()


def snapshot(http) -> list:
    return [http.post("/api/sql", json={"query": query}).json()["rows"] for query in SNAPSHOT]


def test_deleting_a_folder_records_each_file_and_the_table_follows(server, tmp_path):
    http = httpx.Client(base_url=server.url, timeout=60)
    run = http.post(f"{API}/runs/create", json={"experiment_id": "0", "start_time": 1}).json()["run"]["info"]
    root = f"0/{run['run_id']}/artifacts"
    contents = {
        f"{root}/model/weights.bin": b"w" * 3000,
        f"{root}/model/MLmodel": b"flavor",
        f"{root}/kept.txt": b"k",
    }
    for path, data in contents.items():
        assert http.put(f"{ARTIFACTS}/{path}", content=data).status_code == 200

    assert http.delete(f"{ARTIFACTS}/{root}/model", auth=("dana", "x")).status_code == 200

    (deleted,) = ledger_events(http, type="artifacts_deleted")
    assert (
        deleted["actor"] == "dana"
        and deleted["run_id"] == run["run_id"]
        and deleted["path"] == f"{root}/model"
    )
    assert deleted["files"] == [
        {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for path, data in sorted(contents.items())
        if "/model/" in path
    ]
    listed = http.post("/api/sql", json={"query": "SELECT path FROM artifacts ORDER BY path"}).json()["rows"]
    assert listed == [[f"{root}/kept.txt"]]
    assert f"{root}/model deleted (2 files, 3006 bytes)" in http.get("/audit").text
    assert http.get(f"{ARTIFACTS}/{root}/model/MLmodel").status_code == 404

    # Nothing there: nothing recorded. A file written again after its deletion is listed again.
    assert http.delete(f"{ARTIFACTS}/{root}/model").status_code == 200
    assert len(ledger_events(http, type="artifacts_deleted")) == 1
    assert http.put(f"{ARTIFACTS}/{root}/model/MLmodel", content=b"again").status_code == 200
    assert http.delete(f"{ARTIFACTS}/{root}/kept.txt").status_code == 200
    incremental = snapshot(http)
    assert [row[0] for row in incremental[0]] == [f"{root}/model/MLmodel"]
    http.close()

    assert server.stop() == 0
    rebuilt = trackledger("rebuild", "--store", server.store, cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as again:
        assert snapshot(again) == incremental
