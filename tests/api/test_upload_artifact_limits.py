"""The UI's artifact upload streams its body to the store like the proxy: the JSON body cap does
not apply to it."""

from tests.api.conftest import in_process


def test_an_upload_larger_than_the_json_body_cap_is_stored(tmp_path):
    big = b"x" * (2 * 1024 * 1024)
    with in_process(tmp_path / "data", max_body_mb=1) as http:
        exp = http.post("/api/2.0/mlflow/experiments/create", json={"name": "big"}).json()["experiment_id"]
        run_id = http.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp}).json()["run"]["info"][
            "run_id"
        ]
        too_big = http.post("/api/2.0/mlflow/runs/log-metric", content=b'{"pad": "' + big + b'"}')
        assert too_big.status_code == 413
        up = http.post(
            "/ajax-api/2.0/mlflow/upload-artifact",
            params={"run_uuid": run_id, "path": "big.bin"},
            content=big,
        )
        assert up.status_code == 200, up.text
        assert http.get("/get-artifact", params={"run_id": run_id, "path": "big.bin"}).content == big
