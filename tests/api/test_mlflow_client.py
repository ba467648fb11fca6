"""The unmodified mlflow client against the server: runs, search, history, artifacts, models, errors."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException, RestException

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def exp_id(client):
    return client.create_experiment("client-tests")


def test_default_experiment_exists(client):
    exp = client.get_experiment("0")
    assert exp.name == "Default"
    assert exp.artifact_location == "mlflow-artifacts:/0"


def test_run_lifecycle_and_name_sync(client, exp_id):
    run = client.create_run(exp_id)
    assert run.info.run_name  # generated
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    client.update_run(run.info.run_id, name="renamed")
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "renamed" and got.data.tags["mlflow.runName"] == "renamed"
    client.set_tag(run.info.run_id, "mlflow.runName", "via-tag")
    assert client.get_run(run.info.run_id).info.run_name == "via-tag"
    client.set_terminated(run.info.run_id, "FAILED")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FAILED" and got.info.end_time
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.log_metric(run.info.run_id, "m", 1.0)
    client.restore_run(run.info.run_id)
    client.log_metric(run.info.run_id, "m", 1.0)


def test_params_are_immutable_and_long_values_truncated(client, exp_id):
    run_id = client.create_run(exp_id).info.run_id
    client.log_param(run_id, "p", "a")
    client.log_param(run_id, "p", "a")  # the same value again is fine
    with pytest.raises(MlflowException) as err:
        client.log_param(run_id, "p", "b")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in str(err.value)
    with pytest.raises(MlflowException, match="Changing param values"):
        client.log_batch(run_id, params=[Param("p", "c"), Param("q", "1")])
    client.log_param(run_id, "long", "x" * 7000)
    client.set_tag(run_id, "longtag", "y" * 9000)
    data = client.get_run(run_id).data
    assert data.params == {"p": "a", "long": "x" * 6000}  # q was not written: all-or-nothing
    assert data.tags["longtag"] == "y" * 8000


def test_metric_history_latest_nan_and_infinity(client, exp_id):
    run_id = client.create_run(exp_id).info.run_id
    for step in (2, 0, 1):  # arrival order is not history order
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
    client.log_metric(run_id, "nan", float("nan"))
    client.log_metric(run_id, "inf", float("inf"))
    client.log_metric(run_id, "ninf", float("-inf"), step=10**12)
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    metrics = client.get_run(run_id).data.metrics
    assert metrics["loss"] == pytest.approx(1 / 3)  # the latest: highest step
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == 1.7976931348623157e308 and metrics["ninf"] == -1.7976931348623157e308
    (found,) = [r for r in client.search_runs([exp_id]) if r.info.run_id == run_id]
    assert math.isnan(found.data.metrics["nan"]) and found.data.metrics["inf"] == metrics["inf"]
    assert found.data.metrics["loss"] == metrics["loss"]
    (nan_point,) = client.get_metric_history(run_id, "nan")
    assert math.isnan(nan_point.value) and nan_point.step == 0


def test_search_grammar_and_paging(client, exp_id):
    ids = []
    for i, (c, solver) in enumerate([("0.1", "lbfgs"), ("0.5", "liblinear"), ("1.0", "liblinear")]):
        run = client.create_run(exp_id, run_name=f"Grid {i}", tags={"team": "churn" if i else "other"})
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("accuracy", 0.8 + i * 0.05, int(time.time() * 1000), 0)],
            params=[Param("C", c), Param("solver", solver)],
        )
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    search = client.search_runs
    assert [r.info.run_id for r in search([exp_id], "params.C = '0.5'")] == [ids[1]]
    found = search(
        [exp_id],
        "metrics.accuracy > 0.82 AND params.solver = 'liblinear'",
        order_by=["metrics.accuracy DESC"],
    )
    assert [r.info.run_id for r in found] == [ids[2], ids[1]]
    found = search([exp_id], "tags.`mlflow.runName` LIKE 'Grid%' and attributes.status = 'FINISHED'")
    assert set(r.info.run_id for r in found) == set(ids)
    assert {r.info.run_id for r in search([exp_id], "tags.mlflow.runName ILIKE 'grid 1'")} == {ids[1]}
    assert search([exp_id], "tags.mlflow.runName LIKE 'grid%'") == []  # LIKE is case-sensitive
    seen, token = [], None
    while True:
        page = search([exp_id], "params.C != ''", max_results=1, page_token=token, order_by=["params.C ASC"])
        seen += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert seen == ids
    with pytest.raises(RestException) as err:
        search([exp_id], "metrics.accuracy >>> 3")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_deleting_an_experiment_deletes_its_runs_and_restoring_restores_them(client):
    exp = client.create_experiment("to-delete")
    kept, deleted_first = (client.create_run(exp).info.run_id for _ in range(2))
    client.delete_run(deleted_first)
    client.delete_experiment(exp)
    assert client.get_experiment(exp).lifecycle_stage == "deleted"
    assert client.get_run(kept).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp]) == []
    with pytest.raises(RestException) as err:
        client.log_metric(kept, "m", 1.0)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(RestException) as err:  # MLflow only deletes an active experiment
        client.delete_experiment(exp)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.restore_experiment(exp)
    assert {r.info.run_id for r in client.search_runs([exp])} == {kept, deleted_first}
    with pytest.raises(RestException) as err:  # ... and only restores a deleted one
        client.restore_experiment(exp)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_deleting_a_missing_tag_is_an_error(client, exp_id):
    run_id = client.create_run(exp_id).info.run_id
    client.set_tag(run_id, "k", "v")
    client.delete_tag(run_id, "k")
    for _ in range(2):  # never set, then already deleted
        with pytest.raises(RestException) as err:
            client.delete_tag(run_id, "k")
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert f"No tag with name: k in run with id {run_id}" in err.value.message
    exp = client.create_experiment("tag-deletes", tags={"k": "v"})
    client.delete_experiment_tag(exp, "k")
    with pytest.raises(RestException) as err:
        client.delete_experiment_tag(exp, "k")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.set_experiment_tag(exp, "k2", "v")
    client.delete_experiment(exp)
    with pytest.raises(RestException) as err:
        client.delete_experiment_tag(exp, "k2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and "'active' state" in err.value.message
    client.restore_experiment(exp)
    assert client.get_experiment(exp).tags == {"k2": "v"}


def test_experiment_errors_rename_and_tags(client):
    exp = client.create_experiment("exp-a", tags={"owner": "me"})
    with pytest.raises(RestException) as err:
        client.create_experiment("exp-a")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    client.rename_experiment(exp, "exp-b")
    with pytest.raises(RestException) as err:
        client.rename_experiment(exp, "")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and "'new_name'" in err.value.message
    client.set_experiment_tag(exp, "k", "v")
    got = client.get_experiment_by_name("exp-b")
    assert got.experiment_id == exp and got.tags == {"owner": "me", "k": "v"}
    assert client.get_experiment_by_name("exp-a") is None
    with pytest.raises(RestException) as err:
        client.get_experiment("999999")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(RestException) as err:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_log_batch_limits_write_nothing(client, http, exp_id):
    # MlflowClient.log_batch splits big batches itself, so the limits are probed over raw HTTP.
    run_id = client.create_run(exp_id).info.run_id
    now = int(time.time() * 1000)
    metrics = [{"key": "m", "value": 1.0, "timestamp": now, "step": i} for i in range(1001)]
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    tags = [{"key": f"t{i}", "value": "v"} for i in range(101)]
    cases = [
        ({"metrics": metrics}, "at most 1000 metrics. Got 1001 metrics."),
        ({"params": params}, "at most 100 params. Got 101 params."),
        ({"tags": tags}, "at most 100 tags. Got 101 tags."),
        (
            {"metrics": metrics[:950], "params": params[:60]},
            "at most 1000 metrics, params, and tags. Got 1010",
        ),
    ]
    for body, message in cases:
        resp = http.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, **body})
        assert resp.status_code == 400 and resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert message in resp.json()["message"]
    data = client.get_run(run_id).data
    assert data.metrics == {} and data.params == {} and set(data.tags) == {"mlflow.runName"}


def test_artifacts_up_down_and_listed(client, exp_id, tmp_path):
    import mlflow

    run_id = client.create_run(exp_id).info.run_id
    (tmp_path / "notes.txt").write_text("hello artifact\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.json").write_text('{"b": 1}')
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 12288)  # 3 MiB
    client.log_artifact(run_id, str(tmp_path / "notes.txt"))
    client.log_artifacts(run_id, str(tree), "tree")
    client.log_artifact(run_id, str(big))
    client.log_dict(run_id, {"x": 1}, "config.json")
    root = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id) if f.path != "config.json"}
    assert root == {
        ("big.bin", False, 3 * 1024 * 1024),
        ("notes.txt", False, 15),
        ("tree", True, None),
    }
    assert [f.path for f in client.list_artifacts(run_id, "tree")] == ["tree/a.txt", "tree/sub"]
    out = tmp_path / "out"
    mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="tree", dst_path=str(out), tracking_uri=client.tracking_uri
    )
    assert (out / "tree" / "sub" / "b.json").read_text() == '{"b": 1}'
    got = client.download_artifacts(run_id, "big.bin", str(tmp_path / "dl"))
    assert Path(got).read_bytes() == big.read_bytes()
    with pytest.raises(MlflowException):
        client.download_artifacts(run_id, "nope.txt", str(tmp_path / "dl2"))


def test_logged_models_registry_and_aliases(client, exp_id, tmp_path):
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    model = LogisticRegression().fit(X, y)
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_metric("acc", 1.0)
        info = mlflow.sklearn.log_model(model, name="clf", registered_model_name="reg-model")
    assert str(info.registered_model_version) == "1"
    lm = client.get_logged_model(info.model_id)
    assert lm.status == "READY" or str(lm.status).endswith("READY")
    assert lm.source_run_id == run.info.run_id
    expected = model.predict_proba(X)
    for uri in (info.model_uri, f"runs:/{run.info.run_id}/clf", "models:/reg-model/1"):
        np.testing.assert_array_equal(mlflow.sklearn.load_model(uri).predict_proba(X), expected)
    client.set_registered_model_alias("reg-model", "champion", "1")
    np.testing.assert_array_equal(
        mlflow.sklearn.load_model("models:/reg-model@champion").predict_proba(X), expected
    )
    assert client.get_run(run.info.run_id).outputs.model_outputs[0].model_id == info.model_id
    with pytest.raises(RestException) as err:
        client.get_logged_model("m-" + "0" * 32)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_async_logging(client, exp_id):
    import mlflow

    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(experiment_id=exp_id) as run:
        ops = [mlflow.log_metric("async_m", float(s), step=s, synchronous=False) for s in range(20)]
        ops.append(mlflow.log_param("async_p", "1", synchronous=False))
        ops.append(mlflow.set_tag("async_t", "1", synchronous=False))
        for op in ops:
            op.wait()
    history = client.get_metric_history(run.info.run_id, "async_m")
    assert [m.step for m in history] == list(range(20))
    data = client.get_run(run.info.run_id).data
    assert data.params["async_p"] == "1" and data.tags["async_t"] == "1"


def test_log_inputs_dataset_shows_in_run(client, exp_id):
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(client.tracking_uri)
    df = pd.DataFrame({"f0": [1.0, 2.0], "label": [0, 1]})
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_input(mlflow.data.from_pandas(df, name="churn-train", targets="label"), context="training")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["churn-train"]


def test_search_logged_models_filters_on_metrics_and_datasets_and_orders_by_them(client, server):
    import mlflow

    exp = client.create_experiment("logged-model-search")
    run_id = client.create_run(exp).info.run_id
    models = {}
    for name, (val_acc, test_acc) in {"a": (0.7, 0.99), "b": (0.9, 0.5), "c": (None, None)}.items():
        model = client.create_logged_model(exp, name=name, source_run_id=run_id, params={"lr": name})
        models[name] = model.model_id
        time.sleep(0.005)  # creation times differ: the default order is newest first
        if val_acc is not None:
            for dataset, value in (("val", val_acc), ("test", test_acc)):
                client.log_metric(
                    run_id,
                    "acc",
                    value,
                    step=1,
                    model_id=model.model_id,
                    dataset_name=dataset,
                    dataset_digest=f"{dataset}-digest",
                )
    mlflow.set_tracking_uri(server.url)

    def search(**kwargs) -> list[str]:
        found = mlflow.search_logged_models(experiment_ids=[exp], output_format="list", **kwargs)
        return [m.name for m in found]

    assert search(filter_string="metrics.acc > 0.8") == ["b", "a"]  # any point; newest first
    assert search(filter_string="metrics.acc > 0.8", datasets=[{"dataset_name": "val"}]) == ["b"]
    assert search(filter_string="params.lr = 'a'") == ["a"]
    assert search(filter_string="metrics.acc IS NULL") == ["c"]
    assert search(filter_string="metrics.acc IS NOT NULL") == ["b", "a"]
    assert search(datasets=[{"dataset_name": "test", "dataset_digest": "test-digest"}]) == ["b", "a"]
    by_val = [{"field_name": "metrics.acc", "ascending": False, "dataset_name": "val"}]
    assert search(order_by=by_val) == ["b", "a", "c"]  # lacking the metric: last
    by_test = [{"field_name": "metrics.acc", "ascending": True, "dataset_name": "test"}]
    assert search(order_by=by_test) == ["b", "a", "c"]
    assert search(order_by=[{"field_name": "name", "ascending": True}]) == ["a", "b", "c"]
    assert search(order_by=[{"field_name": "creation_timestamp"}]) == ["a", "b", "c"]
    for bad in ([{"field_name": "params.lr"}], [{"field_name": "nope"}]):
        with pytest.raises(MlflowException) as err:
            search(order_by=bad)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
