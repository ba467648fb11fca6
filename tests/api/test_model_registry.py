"""The model registry with the unmodified mlflow client: searches, stages, renames, tags, deletions,
MLflow's errors, and the registry after a restart."""

from __future__ import annotations

import pytest
from mlflow.exceptions import RestException

from tests.api.conftest import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # stages are deprecated in MLflow
]


@pytest.fixture(scope="module")
def trained(client, tmp_path_factory):
    """Two versions of "churn", registered by ``log_model`` from one run, and the data to check
    predictions with."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    model = LogisticRegression().fit(X, np.array([0, 1, 0, 1]))
    mlflow.set_tracking_uri(client.tracking_uri)
    exp_id = client.create_experiment("registry-tests")
    with mlflow.start_run(experiment_id=exp_id) as run:
        for _ in range(2):
            mlflow.sklearn.log_model(model, name="clf", registered_model_name="churn")
    return run.info.run_id, X, model.predict_proba(X)


def _names(models) -> list[str]:
    return [m.name for m in models]


def _error(call, code: str) -> RestException:
    with pytest.raises(RestException) as err:
        call()
    assert err.value.error_code == code, err.value
    return err.value


def test_registered_model_search(client, trained):
    client.create_registered_model("fraud", tags={"team": "risk"}, description="fraud model")
    client.create_registered_model("Churn-EU", tags={"team": "growth"})
    client.set_registered_model_tag("churn", "team", "growth")
    search = client.search_registered_models
    assert _names(search("name = 'churn'")) == ["churn"]
    assert _names(search("name LIKE 'churn%'")) == ["churn"]
    assert _names(search("name ILIKE 'churn%'")) == ["Churn-EU", "churn"]
    assert _names(search("tags.team = 'growth'")) == ["Churn-EU", "churn"]
    assert _names(search("tags.team = 'growth' AND name != 'churn'")) == ["Churn-EU"]
    assert _names(search(order_by=["name DESC"])) == ["fraud", "churn", "Churn-EU"]
    # Setting a tag leaves a model's last update alone: churn's is still its second version's creation.
    assert _names(search(order_by=["last_updated_timestamp DESC"])) == ["Churn-EU", "fraud", "churn"]
    first = search(max_results=2)
    assert _names(first) == ["Churn-EU", "churn"] and first.token
    second = search(max_results=2, page_token=first.token)
    assert _names(second) == ["fraud"] and not second.token
    churn = client.get_registered_model("churn")
    assert [mv.version for mv in churn.latest_versions] == ["2"] and churn.tags == {"team": "growth"}


def test_stages_and_latest_versions(client, trained):
    run_id, X, expected = trained
    client.create_registered_model("staged")
    source = client.get_model_version("churn", "1").source
    model_id = source.removeprefix("models:/")  # the client's ModelVersion does not carry it
    for _ in range(3):  # a logged model's source names its model (MLflow refuses it with a run alone)
        client.create_model_version("staged", source, run_id=run_id, model_id=model_id)
    moved = client.transition_model_version_stage("staged", "1", "staging")
    assert moved.current_stage == "Staging"
    client.transition_model_version_stage("staged", "2", "Staging")
    latest = client.get_latest_versions("staged", stages=["Staging"])
    assert [(mv.version, mv.current_stage) for mv in latest] == [("2", "Staging")]
    client.transition_model_version_stage("staged", "3", "Staging", archive_existing_versions=True)
    stages = {mv.version: mv.current_stage for mv in client.search_model_versions("name = 'staged'")}
    assert stages == {"1": "Archived", "2": "Archived", "3": "Staging"}
    latest = {mv.current_stage: mv.version for mv in client.get_latest_versions("staged")}
    assert latest == {"Archived": "2", "Staging": "3"}
    assert client.get_latest_versions("staged", stages=["Production"]) == []
    # A transition without archiving leaves the others where they are.
    client.transition_model_version_stage("staged", "1", "Production")
    client.transition_model_version_stage("staged", "2", "Production")
    stages = {mv.version: mv.current_stage for mv in client.search_model_versions("name = 'staged'")}
    assert stages == {"1": "Production", "2": "Production", "3": "Staging"}
    import mlflow.sklearn
    import numpy as np

    loaded = mlflow.sklearn.load_model("models:/staged/Staging")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_update_rename_and_load_by_the_new_name(client, trained):
    import mlflow.sklearn
    import numpy as np

    _run_id, X, expected = trained
    client.create_registered_model("to-rename")
    source = client.get_model_version("churn", "1").source
    client.create_model_version(
        "to-rename", source, tags={"k": "v"}, model_id=source.removeprefix("models:/")
    )
    client.set_registered_model_alias("to-rename", "champion", "1")
    client.set_registered_model_tag("to-rename", "owner", "me")
    before = client.get_registered_model("to-rename")
    updated = client.update_registered_model("to-rename", description="about it")
    assert updated.description == "about it"
    assert updated.last_updated_timestamp >= before.last_updated_timestamp
    assert client.update_model_version("to-rename", "1", description="v1").description == "v1"
    client.rename_registered_model("to-rename", "renamed")
    renamed = client.get_registered_model("renamed")
    assert renamed.name == "renamed" and renamed.description == "about it"
    assert renamed.tags == {"owner": "me"} and renamed.aliases == {"champion": "1"}
    _error(lambda: client.get_registered_model("to-rename"), "RESOURCE_DOES_NOT_EXIST")
    mv = client.get_model_version("renamed", "1")
    assert (mv.name, mv.description, mv.tags, mv.aliases) == ("renamed", "v1", {"k": "v"}, ["champion"])
    for uri in ("models:/renamed/1", "models:/renamed@champion", "models:/renamed@latest"):
        np.testing.assert_array_equal(mlflow.sklearn.load_model(uri).predict_proba(X), expected)
    _error(lambda: client.rename_registered_model("renamed", "churn"), "RESOURCE_ALREADY_EXISTS")


def test_tags_on_models_and_versions(client, trained):
    client.create_registered_model("tagged", tags={"a": "1"})
    client.create_model_version("tagged", "s3://bucket/model", tags={"b": "2"})
    client.set_registered_model_tag("tagged", "c", "3")
    client.delete_registered_model_tag("tagged", "a")
    client.delete_registered_model_tag("tagged", "never-set")  # as in MLflow, no error
    client.set_model_version_tag("tagged", "1", "d", "4")
    client.delete_model_version_tag("tagged", "1", "b")
    assert client.get_registered_model("tagged").tags == {"c": "3"}
    assert client.get_model_version("tagged", "1").tags == {"d": "4"}
    _error(lambda: client.set_model_version_tag("tagged", "9", "d", "4"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.set_registered_model_tag("nope", "d", "4"), "RESOURCE_DOES_NOT_EXIST")


def test_model_version_search(client, trained):
    run_id, _X, _expected = trained
    client.create_registered_model("searched")
    for i in range(3):
        client.create_model_version(
            "searched", f"s3://bucket/{i}", tags={"parity": "odd" if i % 2 else "even"}
        )
    client.set_model_version_tag("searched", "2", "picked", "yes")
    search = client.search_model_versions

    def found(*args, **kwargs):
        return [(mv.name, mv.version) for mv in search(*args, **kwargs)]

    assert found("name = 'churn'", order_by=["version_number ASC"]) == [("churn", "1"), ("churn", "2")]
    assert found(f"run_id = '{run_id}' AND name = 'churn'") == [("churn", "2"), ("churn", "1")]
    assert found("name = 'searched' AND tags.parity = 'even'") == [("searched", "3"), ("searched", "1")]
    assert found("tags.picked = 'yes'") == [("searched", "2")]
    assert found("name = 'searched' AND version_number > 1", order_by=["version_number"]) == [
        ("searched", "2"),
        ("searched", "3"),
    ]
    assert found("name IN ('searched') AND source_path = 's3://bucket/0'") == [("searched", "1")]
    page = search("name = 'searched'", max_results=2, order_by=["version_number DESC"])
    assert [mv.version for mv in page] == ["3", "2"] and page.token
    rest = search("name = 'searched'", max_results=2, order_by=["version_number DESC"], page_token=page.token)
    assert [mv.version for mv in rest] == ["1"] and not rest.token


def test_deleting_versions_and_models(client, trained):
    client.create_registered_model("short-lived", tags={"t": "1"})
    for i in range(3):
        client.create_model_version("short-lived", f"s3://bucket/{i}")
    client.set_registered_model_alias("short-lived", "champion", "3")
    client.set_registered_model_alias("short-lived", "backup", "2")
    client.delete_model_version("short-lived", "3")
    _error(lambda: client.get_model_version("short-lived", "3"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.get_model_version_by_alias("short-lived", "champion"), "INVALID_PARAMETER_VALUE")
    model = client.get_registered_model("short-lived")
    assert model.aliases == {"backup": "2"} and [mv.version for mv in model.latest_versions] == ["2"]
    assert client.create_model_version("short-lived", "s3://bucket/again").version == "4"  # 3 stays used
    assert client.get_model_version_by_alias("short-lived", "latest").version == "4"
    client.delete_registered_model("short-lived")
    _error(lambda: client.get_registered_model("short-lived"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.get_model_version("short-lived", "2"), "RESOURCE_DOES_NOT_EXIST")
    assert client.search_registered_models("name = 'short-lived'") == []
    again = client.create_registered_model("short-lived")
    assert again.tags == {} and again.aliases == {}
    assert client.create_model_version("short-lived", "s3://bucket/new").version == "1"
    assert [mv.version for mv in client.search_model_versions("name = 'short-lived'")] == ["1"]


def _events(http) -> list[dict]:
    return http.get("/api/ledger/events", params={"limit": 10000}).json()["events"]


def test_mlflow_errors_and_bad_input_changes_nothing(client, http, trained):
    before = _events(http)
    stage = _error(
        lambda: client.transition_model_version_stage("churn", "1", "Live"), "INVALID_PARAMETER_VALUE"
    )
    assert "Invalid Model Version stage: Live" in stage.message
    _error(lambda: client.transition_model_version_stage("churn", "9", "Staging"), "RESOURCE_DOES_NOT_EXIST")

    def archive():
        return client.transition_model_version_stage("churn", "1", "None", archive_existing_versions=True)

    assert "is not an Active stage" in _error(archive, "INVALID_PARAMETER_VALUE").message
    _error(lambda: client.get_latest_versions("churn", stages=["Live"]), "INVALID_PARAMETER_VALUE")
    _error(lambda: client.get_latest_versions("nope"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.create_registered_model("churn"), "RESOURCE_ALREADY_EXISTS")
    _error(lambda: client.create_registered_model("a/b"), "INVALID_PARAMETER_VALUE")
    _error(lambda: client.rename_registered_model("churn", "fraud"), "RESOURCE_ALREADY_EXISTS")
    _error(lambda: client.rename_registered_model("nope", "x"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.rename_registered_model("churn", "x:y"), "INVALID_PARAMETER_VALUE")
    _error(lambda: client.update_model_version("churn", "9", "d"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.delete_model_version("churn", "9"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.delete_registered_model("nope"), "RESOURCE_DOES_NOT_EXIST")
    _error(lambda: client.set_registered_model_tag("churn", "../x", "v"), "INVALID_PARAMETER_VALUE")
    _error(lambda: client.set_registered_model_alias("churn", "latest", "1"), "INVALID_PARAMETER_VALUE")
    for bad in ("creation_timestamp > 0", "metrics.m > 1", "name > 'a'", "name = 'churn' OR name = 'x'"):
        _error(lambda bad=bad: client.search_registered_models(bad), "INVALID_PARAMETER_VALUE")
    for bad in ("version_number LIKE '1'", "stage = 'None'", "source_path IN ('a')"):
        _error(lambda bad=bad: client.search_model_versions(bad), "INVALID_PARAMETER_VALUE")
    _error(lambda: client.search_registered_models(order_by=["creation_time"]), "INVALID_PARAMETER_VALUE")
    _error(lambda: client.search_registered_models(max_results=1001), "INVALID_PARAMETER_VALUE")
    _error(lambda: client.search_model_versions(max_results=0), "INVALID_PARAMETER_VALUE")
    assert _events(http) == before


def test_raw_registry_requests(http, trained):
    """What the client does not send: GET get-latest-versions, the ajax path, MLflow's shapes."""
    api = "/api/2.0/mlflow"
    got = http.get(f"{api}/registered-models/get-latest-versions", params={"name": "churn", "stages": "None"})
    assert [mv["version"] for mv in got.json()["model_versions"]] == ["2"]
    resp = http.get("/ajax-api/2.0/mlflow/registered-models/search", params={"filter": "name = 'churn'"})
    (model,) = resp.json()["registered_models"]
    assert model["name"] == "churn" and "aliases" not in model["latest_versions"][0]
    assert http.get(f"{api}/model-versions/search", params={"filter": "name = 'nope'"}).json() == {}
    resp = http.post(f"{api}/registered-models/rename", json={"name": "churn"})
    assert resp.status_code == 400 and "'new_name'" in resp.json()["message"]
    resp = http.get(f"{api}/model-versions/get", params={"name": "churn", "version": "x"})
    assert resp.json()["message"] == "Parameter 'version' must be an integer, got 'x'."


def test_the_registry_survives_a_restart(tmp_path):
    """The write path's registry index is loaded from the projection: names, keys, the numbers
    used (deleted ones included) and the stages."""
    from mlflow import MlflowClient

    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    try:
        client = MlflowClient(tracking_uri=server.url)
        client.create_registered_model("before")
        for i in range(2):
            client.create_model_version("before", f"s3://bucket/{i}")
        client.transition_model_version_stage("before", "1", "Production")
        client.delete_model_version("before", "2")
        client.rename_registered_model("before", "after")
        assert server.stop() == 0
        server.start()  # on another port
        client = MlflowClient(tracking_uri=server.url)
        assert client.create_model_version("after", "s3://bucket/3").version == "3"
        client.transition_model_version_stage("after", "3", "Production", archive_existing_versions=True)
        assert client.get_model_version("after", "1").current_stage == "Archived"
        _error(lambda: client.get_registered_model("before"), "RESOURCE_DOES_NOT_EXIST")
        client.create_registered_model("before")
    finally:
        if server.proc.poll() is None:
            assert server.stop() == 0, server.read_log()
