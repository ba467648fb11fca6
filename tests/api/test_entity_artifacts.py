"""Artifacts named by their run, logged model or model version (MLflow's tracking-API and UI
routes), and the UI's bulk reads: served from the artifact store only, never from elsewhere."""

import pytest

from tests.api.conftest import API, ledger_events, mlflow_error

pytestmark = pytest.mark.e2e
AJAX = "/ajax-api/2.0/mlflow"


@pytest.fixture(scope="module")
def run_with_files(http):
    exp = http.post(f"{API}/experiments/create", json={"name": "entity-artifacts"}).json()["experiment_id"]
    info = http.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]
    for path, data in (("a.txt", b"alpha"), ("dir/b.json", b"{}")):
        answer = http.post(
            f"{AJAX}/upload-artifact", params={"run_uuid": info["run_id"], "path": path}, content=data
        )
        assert answer.status_code == 200, answer.text
    return exp, info


def test_a_runs_files_are_listed_from_its_root_and_downloaded_as_text_plain(http, run_with_files):
    _exp, info = run_with_files
    listed = http.get(f"{API}/artifacts/list", params={"run_id": info["run_id"]}).json()
    assert listed == {
        "root_uri": info["artifact_uri"],
        "files": [{"path": "a.txt", "is_dir": False, "file_size": 5}, {"path": "dir", "is_dir": True}],
    }
    nested = http.get(f"{AJAX}/artifacts/list", params={"run_id": info["run_id"], "path": "dir"}).json()
    assert nested["files"] == [{"path": "dir/b.json", "is_dir": False, "file_size": 2}]
    got = http.get("/get-artifact", params={"run_id": info["run_id"], "path": "a.txt"})
    assert got.status_code == 200 and got.content == b"alpha"
    assert got.headers["content-type"] == "text/plain"
    assert got.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["../a.txt", "dir/../../x", "/etc/passwd", "%2e%2e/x"])
def test_paths_leaving_the_runs_root_are_refused(http, run_with_files, path):
    _exp, info = run_with_files
    before = len(ledger_events(http))
    got = http.get("/get-artifact", params={"run_id": info["run_id"], "path": path})
    assert got.status_code in (400, 404), got.text
    up = http.post(f"{AJAX}/upload-artifact", params={"run_uuid": info["run_id"], "path": path}, content=b"x")
    mlflow_error(up, 400, "INVALID_PARAMETER_VALUE")
    assert len(ledger_events(http)) == before


def test_upload_refusals_in_mlflows_words(http, run_with_files):
    _exp, info = run_with_files
    for params, message in [
        ({}, "Request must specify run_uuid."),
        ({"run_uuid": info["run_id"]}, "Request must specify path."),
        ({"run_uuid": info["run_id"], "path": "t.txt"}, "Request must specify data."),
    ]:
        assert (
            mlflow_error(http.post(f"{AJAX}/upload-artifact", params=params), 400, "INVALID_PARAMETER_VALUE")[
                "message"
            ]
            == message
        )


def test_a_model_versions_file_comes_from_below_its_source_only(http, run_with_files):
    _exp, info = run_with_files
    http.post(f"{API}/registered-models/create", json={"name": "files"}).raise_for_status()
    for source in (f"runs:/{info['run_id']}/dir", "s3://bucket/elsewhere"):
        body = {"name": "files", "source": source, "run_id": info["run_id"]}
        http.post(f"{API}/model-versions/create", json=body).raise_for_status()
    got = http.get("/model-versions/get-artifact", params={"name": "files", "version": "1", "path": "b.json"})
    assert got.status_code == 200 and got.content == b"{}"
    for params in (
        {"name": "files", "version": "1", "path": "../a.txt"},
        {"name": "files", "version": "2", "path": "x"},
    ):
        assert http.get("/model-versions/get-artifact", params=params).status_code == 400
    mlflow_error(
        http.get("/model-versions/get-artifact", params={"name": "files", "version": "9", "path": "x"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_history_bulk_and_dataset_summaries(http, run_with_files):
    exp, info = run_with_files
    for step, value in ((2, 1.0), (1, 2.0)):
        point = {
            "run_id": info["run_id"],
            "key": "loss",
            "value": value,
            "timestamp": 10 - step,
            "step": step,
        }
        http.post(f"{API}/runs/log-metric", json=point).raise_for_status()
    got = http.get(
        f"{AJAX}/metrics/get-history-bulk", params={"run_id": [info["run_id"]], "metric_key": "loss"}
    ).json()
    assert [(m["step"], m["timestamp"], m["run_id"]) for m in got["metrics"]] == [
        (2, 8, info["run_id"]),
        (1, 9, info["run_id"]),
    ]
    limited = http.get(
        f"{AJAX}/metrics/get-history-bulk",
        params={"run_id": [info["run_id"]], "metric_key": "loss", "max_results": 1},
    )
    assert len(limited.json()["metrics"]) == 1
    mlflow_error(
        http.get(f"{AJAX}/metrics/get-history-bulk", params={"metric_key": "loss"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    too_many = {"run_id": [f"r{i}" for i in range(101)], "metric_key": "loss"}
    assert (
        "cannot specify more than 100"
        in mlflow_error(
            http.get(f"{AJAX}/metrics/get-history-bulk", params=too_many), 400, "INVALID_PARAMETER_VALUE"
        )["message"]
    )

    dataset = {"name": "d", "digest": "x1", "source_type": "local", "source": "{}"}
    inputs = {
        "run_id": info["run_id"],
        "datasets": [{"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "train"}]}],
    }
    http.post(f"{API}/runs/log-inputs", json=inputs).raise_for_status()
    summaries = http.post(f"{AJAX}/experiments/search-datasets", json={"experiment_ids": [exp]}).json()
    assert summaries == {
        "dataset_summaries": [{"experiment_id": exp, "name": "d", "digest": "x1", "context": "train"}]
    }
    mlflow_error(http.post(f"{AJAX}/experiments/search-datasets", json={}), 400, "INVALID_PARAMETER_VALUE")


def test_a_logged_models_files_and_missing_tag(http, run_with_files):
    exp, _info = run_with_files
    model = http.post(
        f"{API}/logged-models", json={"experiment_id": exp, "source_run_id": "not-a-run"}
    ).json()["model"]["info"]
    assert model["source_run_id"] == "not-a-run"
    assert http.get(f"{AJAX}/logged-models/{model['model_id']}/artifacts/directories").json() == {
        "root_uri": model["artifact_uri"]
    }
    gone = http.delete(f"{API}/logged-models/{model['model_id']}/tags/never-set")
    assert "No tag with key 'never-set'" in mlflow_error(gone, 404, "RESOURCE_DOES_NOT_EXIST")["message"]


def test_an_unknown_run_is_a_404_not_a_file(http):
    mlflow_error(
        http.get("/get-artifact", params={"run_id": "nope", "path": "a.txt"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_params_logged_to_a_logged_model_after_its_creation(client, http, run_with_files):
    exp, _info = run_with_files
    model = client.create_logged_model(exp, params={"a": "1"})
    client.log_model_params(model.model_id, {"b": "2"})
    client.log_model_params(model.model_id, {"a": "changed"})  # the first value of a key stays
    assert client.get_logged_model(model.model_id).params == {"a": "1", "b": "2"}
    mlflow_error(
        http.post(f"{API}/logged-models/m-{'0' * 32}/params", json={"params": []}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_repeated_slashes_count_as_one_and_bulk_interval_steps_come_in_pairs(server, http, run_with_files):
    _exp, info = run_with_files
    got = http.get(f"{server.url}//get-artifact", params={"run_id": info["run_id"], "path": "a.txt"})
    assert got.status_code == 200 and got.content == b"alpha"
    url = f"{AJAX}/metrics/get-history-bulk-interval"
    for params, message in [
        ({"start_step": 1}, "If either start step or end step are specified, both must be specified."),
        ({"start_step": 2, "end_step": 1}, "end_step must be greater than start_step."),
        ({"max_results": 0}, "max_results must be between 1 and 2500."),
    ]:
        resp = http.get(url, params={"run_ids": [info["run_id"]], "metric_key": "loss", **params})
        assert mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"].startswith(message)
