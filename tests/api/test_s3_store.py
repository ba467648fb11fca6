"""The server on an S3 store (moto on loopback): ledger segments and artifacts both land in the bucket."""

from __future__ import annotations

import httpx
import pytest
import s3fs

from tests.api.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.s3]
API = "/api/2.0/mlflow"


def test_server_on_s3_store(s3_server, s3_bucket, tmp_path):
    bucket, options = s3_bucket
    env = {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    store = f"s3://{bucket}/tl"
    proc = ServerProcess(store, tmp_path, args=("--state-dir", str(tmp_path / "state")), env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as http:
            exp = http.post(f"{API}/experiments/create", json={"name": "s3"}).json()["experiment_id"]
            run_id = http.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"][
                "run_id"
            ]
            body = {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": 1, "step": 0}
            assert http.post(f"{API}/runs/log-metric", json=body).status_code == 200
            path = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/model.bin"
            payload = bytes(range(256)) * 40_000  # ~10 MB: several upload parts
            assert http.put(path, content=payload).status_code == 200
            assert http.get(path).content == payload
    finally:
        assert proc.stop() == 0, proc.read_log()
    fs = s3fs.S3FileSystem(**options)
    fs.invalidate_cache()
    assert fs.cat(f"{bucket}/tl/artifacts/{exp}/{run_id}/artifacts/model.bin") == payload
    assert fs.glob(f"{bucket}/tl/segments/**/*.parquet"), (
        "shutdown rolled the WAL into a segment in the bucket"
    )
    proc.start()  # and it comes back from the bucket
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as http:
            metric = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["data"]["metrics"]
            assert metric == [{"key": "m", "value": 1.5, "timestamp": 1, "step": 0}]
    finally:
        assert proc.stop() == 0, proc.read_log()
