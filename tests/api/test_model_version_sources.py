"""A model version's source must lie within the run or logged model it names (MLflow 3.17.2's
rules): no version can point the server at a file outside the artifact store."""

import json

import pytest

from tests.api.conftest import API, ledger_events, mlflow_error

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def registered(http, run_id):
    http.post(f"{API}/registered-models/create", json={"name": "sources"}).raise_for_status()
    exp = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["info"]["experiment_id"]
    other = http.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    model = http.post(f"{API}/logged-models", json={"experiment_id": exp}).json()["model"]["info"]
    return run_id, other, model


def _create(http, **body):
    return http.post(f"{API}/model-versions/create", json={"name": "sources", **body})


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc",
        "/tmp",
        "relative/path",
        "s3://b/../../x",
        "s3://b/%2e%2e/x",
        "mlflow-artifacts://host:9000/models/../../../",
        "http://host/api/2.0/mlflow-artifacts/artifacts/a%00",
        "runs:/{other}/model",
        "runs://host/{run}/model",
        "mlflow-artifacts:/{exp}/{other}/artifacts/model",
        "models:/{model_id}",
    ],
)
def test_a_source_outside_the_named_run_is_refused_and_appends_nothing(http, registered, source):
    run, other, model = registered
    source = source.format(run=run, other=other, model_id=model["model_id"], exp=model["experiment_id"])
    before = len(ledger_events(http))
    body = mlflow_error(_create(http, source=source, run_id=run), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith("Invalid model version source:")
    assert len(ledger_events(http)) == before


def test_a_logged_models_source_must_name_that_model(http, registered):
    run, _other, model = registered
    mlflow_error(
        _create(http, source="models:/m-" + "0" * 32, model_id=model["model_id"]),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    mlflow_error(
        _create(http, source=f"runs:/{run}/m", model_id=model["model_id"]), 400, "INVALID_PARAMETER_VALUE"
    )


def test_sources_within_the_run_or_model_are_kept_and_the_model_lists_its_versions(http, registered):
    run, _other, model = registered
    exp = model["experiment_id"]
    accepted = [
        {"source": f"runs:/{run}/model", "run_id": run},
        {"source": f"mlflow-artifacts:/{exp}/{run}/artifacts/model", "run_id": run},
        {"source": "s3://bucket/model"},
        {"source": f"models:/{model['model_id']}", "model_id": model["model_id"]},
        {"source": model["artifact_uri"], "model_id": model["model_id"]},
    ]
    versions = []
    for body in accepted:
        answer = _create(http, **body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"]["source"] == body["source"]
        versions.append(int(answer.json()["model_version"]["version"]))
    got = http.get(f"{API}/logged-models/{model['model_id']}").json()["model"]["info"]
    tags = {t["key"]: t["value"] for t in got["tags"]}
    assert json.loads(tags["mlflow.modelVersions"]) == [
        {"name": "sources", "version": v} for v in versions[-2:]
    ]
