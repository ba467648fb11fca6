"""``trackledger import --server URL``: into a store a running server owns, through that server
(events by its native import route, files by its artifact proxy)."""

from __future__ import annotations

import httpx
import msgspec
from mlflow import MlflowClient
from trackledger.ledger.events import ExperimentCreated

from tests.api.conftest import ServerProcess, ledger_events
from tests.importer.compare import differences, reads
from tests.importer.conftest import trackledger


def test_imported_through_a_running_server(mlflow_source, tmp_path):
    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    try:
        MlflowClient(server.url).search_experiments()  # the server's own Default experiment exists
        args = [
            "import",
            "--from",
            mlflow_source.db_url,
            "--artifacts-from",
            str(mlflow_source.artifacts),
            "--server",
            server.url,
        ]
        out = trackledger(*args)
        assert out.returncode == 0, out.stderr
        again = trackledger(*args)
        assert again.returncode == 0, again.stderr
        assert "│ events appended   │        0 │" in again.stdout
        expected, got = reads(mlflow_source.url, tmp_path), reads(server.url, tmp_path)
        with httpx.Client(base_url=server.url) as http:
            artifacts = ledger_events(http, type="artifact_written")
    finally:
        server.stop()
    # The Default experiment is the server's own (its creation time is the server's).
    for side in (expected, got):
        side["experiments"] = [e[:4] + e[6:] if e[0] == "0" else e for e in side["experiments"]]
    assert differences(expected, got) == []
    paths = [e["path"] for e in artifacts]
    assert len(paths) == len(set(paths)) and any(p.endswith("plots/deep/er/curve.txt") for p in paths)


def test_the_import_route_takes_only_imported_events(tmp_path):
    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            before = ledger_events(http)
            plain = ExperimentCreated(
                id="e-1", experiment_id="7", name="x", artifact_location="", creation_time=1
            )
            body = msgspec.msgpack.encode({"events": [plain]})
            headers = {"Content-Type": "application/msgpack"}
            refused = http.post("/api/ledger/import", content=body, headers=headers)
            assert refused.status_code == 400 and "imported" in refused.json()["message"]
            garbage = http.post("/api/ledger/import", content=b"\x93\x01", headers=headers)
            assert garbage.status_code == 400 and garbage.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            verified = msgspec.structs.replace(plain, imported_from="x", actor_verified=True)
            body = msgspec.msgpack.encode({"events": [verified]})
            assert http.post("/api/ledger/import", content=body, headers=headers).status_code == 400
            assert ledger_events(http) == before

            imported = msgspec.structs.replace(plain, imported_from="sqlite:///x.db")
            body = msgspec.msgpack.encode({"events": [imported]})
            assert http.post("/api/ledger/import", content=body, headers=headers).json() == {"appended": 1}
            assert http.post("/api/ledger/import", content=body, headers=headers).json() == {"appended": 0}
            known = http.post("/api/ledger/import/known", json={"ids": ["e-1", "nope"]}).json()
            assert known == {"known": {"e-1": "7"}}
    finally:
        server.stop()
