"""The seed scenario, verbatim: two people log LogisticRegression runs from two scripts (two processes),
then compare them with ``mlflow.search_runs`` and load both models back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import mlflow, mlflow.sklearn
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    run_name, C, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    X, y = make_classification(n_samples=400, n_features=6, random_state=7)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=42)
    mlflow.set_experiment("Churn Prediction")
    with mlflow.start_run(run_name=run_name) as run:
        params = {"C": C, "solver": "liblinear", "random_state": 42}
        mlflow.log_params(params)
        model = LogisticRegression(**params).fit(X_train, y_train)
        accuracy = model.score(X_test, y_test)
        mlflow.log_metric("accuracy", accuracy)
        info = mlflow.sklearn.log_model(model, "model")
    np.save(out + ".npy", model.predict_proba(X_test))
    json.dump({"run_id": run.info.run_id, "model_uri": info.model_uri, "accuracy": accuracy}, open(out, "w"))
    """
)


def _run_script(server, tmp_path, user: str, run_name: str, C: float) -> dict:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{user}.json"
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "USER": user, "LOGNAME": user}
    done = subprocess.run(
        [sys.executable, str(script), run_name, str(C), str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:] + server.read_log()
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def seeded(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seed")
    alice = _run_script(server, tmp, "alice", "Alice's Initial Run", 0.1)
    bob = _run_script(server, tmp, "bob", "Bob's Hyperparameter Tune", 0.5)
    return tmp, alice, bob


def test_search_runs_shows_both_runs_with_params_and_accuracy(server, seeded):
    import mlflow

    _, alice, bob = seeded
    mlflow.set_tracking_uri(server.url)
    df = mlflow.search_runs(experiment_names=["Churn Prediction"])
    assert len(df) == 2
    by_id = df.set_index("run_id")
    assert by_id.loc[alice["run_id"], "params.C"] == "0.1"
    assert by_id.loc[bob["run_id"], "params.C"] == "0.5"
    assert by_id.loc[alice["run_id"], "metrics.accuracy"] == pytest.approx(alice["accuracy"])
    assert by_id.loc[bob["run_id"], "metrics.accuracy"] == pytest.approx(bob["accuracy"])
    assert set(by_id["tags.mlflow.user"]) == {"alice", "bob"}
    assert set(by_id["status"]) == {"FINISHED"}


def test_each_model_loads_and_predicts_exactly_like_the_original(server, seeded):
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    tmp, alice, bob = seeded
    mlflow.set_tracking_uri(server.url)
    X, y = make_classification(n_samples=400, n_features=6, random_state=7)
    _, X_test, _, _ = train_test_split(X, y, random_state=42)
    for who, result in (("alice", alice), ("bob", bob)):
        expected = np.load(tmp / f"{who}.json.npy")
        for uri in (result["model_uri"], f"runs:/{result['run_id']}/model"):
            model = mlflow.sklearn.load_model(uri)
            np.testing.assert_array_equal(model.predict_proba(X_test), expected)


def test_events_record_each_user_as_an_unverified_actor(http, seeded):
    _, alice, bob = seeded
    for who, result in (("alice", alice), ("bob", bob)):
        page = http.get("/api/ledger/events", params={"run_id": result["run_id"], "limit": 1000}).json()
        assert page["events"], page
        assert {e["actor"] for e in page["events"]} == {who}
        assert not any(e.get("actor_verified") for e in page["events"])
        assert all(e.get("remote_addr") == "127.0.0.1" for e in page["events"])
        # The model's files carry no user of their own: they belong to whoever logged the model.
        model_id = result["model_uri"].removeprefix("models:/")
        model_events = http.get("/api/ledger/events", params={"model_id": model_id, "limit": 1000}).json()
        uploads = [e for e in model_events["events"] if e["type"] == "artifact_written"]
        assert uploads and {e["actor"] for e in uploads} == {who}


def test_cli_experiments_create_and_search(server):
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
    mlflow_cli = [sys.executable, "-m", "mlflow"]
    created = subprocess.run(
        [*mlflow_cli, "experiments", "create", "--experiment-name", "baseline-v1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    assert "Created experiment 'baseline-v1' with id" in created.stdout
    listed = subprocess.run(
        [*mlflow_cli, "experiments", "search", "--view", "all"], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert "baseline-v1" in listed.stdout and "Default" in listed.stdout
    again = subprocess.run(
        [*mlflow_cli, "experiments", "create", "--experiment-name", "baseline-v1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0
    assert "RESOURCE_ALREADY_EXISTS" in again.stderr + again.stdout
