"""The seed scenario through the plugin while the server is out when the scripts start, killed
while they log, and back later: both scripts finish normally, and afterwards everything they
logged is on the server exactly once. The two scripts share one spool directory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mlflow import MlflowClient

from tests.client.conftest import Script, ServerProcess, free_port, plugin_env, wait_for

pytestmark = pytest.mark.e2e

STEPS = 10_000
SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import mlflow, mlflow.sklearn
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    run_name, C, out, steps = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])

    def phase(name):  # tell the test where we are, then wait for its go-ahead
        open(f"{out}.{name}", "w").write(run.info.run_id)
        while not os.path.exists(f"{out}.go-{name}"):
            time.sleep(0.05)

    X, y = make_classification(n_samples=400, n_features=6, random_state=7)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=42)
    experiment = mlflow.set_experiment("Churn Prediction")
    with mlflow.start_run(run_name=run_name) as run:
        params = {"C": C, "solver": "liblinear", "random_state": 42}
        mlflow.log_params(params)
        mlflow.set_tag("team", "churn")
        for step in range(steps):
            if step == steps // 3:
                phase("logged-offline")
            if step == 2 * steps // 3:
                phase("logged-online")
            mlflow.log_metrics({"loss": 1.0 / (step + 1), "lr": 0.01}, step=step)
        model = LogisticRegression(**params).fit(X_train, y_train)
        accuracy = model.score(X_test, y_test)
        mlflow.log_metric("accuracy", accuracy)
        info = mlflow.sklearn.log_model(model, name="model")
    np.save(out + ".npy", model.predict_proba(X_test))
    json.dump(
        {"run_id": run.info.run_id, "model_uri": info.model_uri, "accuracy": accuracy,
         "experiment_id": experiment.experiment_id},
        open(out, "w"),
    )
    """
)
PEOPLE = (("alice", "Alice's Initial Run", 0.1), ("bob", "Bob's Hyperparameter Tune", 0.5))


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outage")
    port = free_port()
    server = ServerProcess(str(tmp / "data"), tmp, port=port)
    spool = tmp / "spool"
    scripts = {}
    for user, run_name, C in PEOPLE:  # the server is not running yet
        env = plugin_env(port, spool, USER=user, LOGNAME=user)
        args = [run_name, str(C), str(tmp / user), str(STEPS)]
        scripts[user] = Script(tmp / f"train_{user}.py", SCRIPT, args, env)
    marker = {user: tmp / user for user, _, _ in PEOPLE}

    def reached(name):
        return all(m.with_name(f"{m.name}.{name}").exists() for m in marker.values())

    def go(name):
        for m in marker.values():
            m.with_name(f"{m.name}.go-{name}").write_text("")

    wait_for(lambda: reached("logged-offline"), what="the scripts to log a third with the server out")
    server.start()
    go("logged-offline")
    wait_for(lambda: reached("logged-online"), what="the scripts to log two thirds")
    client = MlflowClient(server.url)
    run_ids = [m.with_name(f"{m.name}.logged-online").read_text() for m in marker.values()]
    # Killed once it has taken some of each run's points: the rest (and whatever was in flight)
    # is resent after the restart.
    wait_for(
        lambda: all(_count(client, run_id) > 0 for run_id in run_ids), what="the server to take some points"
    )
    server.kill()
    go("logged-online")
    finished = {user: script.finish() for user, script in scripts.items()}
    server.start()
    synced = subprocess.run(
        [sys.executable, "-m", "trackledger", "sync", str(spool)], capture_output=True, text=True, timeout=300
    )
    results = {user: json.loads(marker[user].read_text()) for user in marker}
    yield server, tmp, finished, synced, results
    server.stop()


def _count(client, run_id) -> int:
    try:
        return len(client.get_metric_history(run_id, "loss"))
    except Exception:
        return 0


def test_scripts_finish_normally_while_the_server_is_out(outage):
    _, _, finished, _, _ = outage
    for user, (code, _, err) in finished.items():
        assert code == 0, f"{user}: {err[-3000:]}"
        assert "Traceback" not in err, err[-3000:]
        # The one line that says what stays behind, and how it ships.
        assert "trackledger sync" in err


def test_sync_ships_what_the_scripts_left(outage):
    _, tmp, _, synced, _ = outage
    assert synced.returncode == 0, synced.stderr
    assert "shipped" in synced.stdout
    assert not list((tmp / "spool").glob("*.spool"))


def test_every_param_metric_tag_and_status_arrives_exactly_once(outage):
    server, _, _, _, results = outage
    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name("Churn Prediction")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in runs} == {r["run_id"] for r in results.values()}
    for user, run_name, C in PEOPLE:
        run = client.get_run(results[user]["run_id"])
        assert run.info.status == "FINISHED"
        assert run.info.run_name == run_name
        assert run.data.params == {"C": str(C), "solver": "liblinear", "random_state": "42"}
        assert run.data.tags["team"] == "churn"
        assert run.data.tags["mlflow.user"] == user
        assert run.data.metrics["accuracy"] == pytest.approx(results[user]["accuracy"])
        for key in ("loss", "lr"):
            history = client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == list(range(STEPS)), key
        # The provisional experiment id the script saw stood for the real one.
        assert results[user]["experiment_id"].startswith("pending-")
        assert run.info.experiment_id == experiment.experiment_id


def test_the_models_arrive_once_and_predict_like_the_originals(outage):
    import mlflow
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    server, tmp, _, _, results = outage
    client = MlflowClient(server.url)
    models = client.search_logged_models(
        experiment_ids=[client.get_experiment_by_name("Churn Prediction").experiment_id]
    )
    assert sorted(m.model_id for m in models) == sorted(
        r["model_uri"].removeprefix("models:/") for r in results.values()
    )
    mlflow.set_tracking_uri(server.url)
    X, y = make_classification(n_samples=400, n_features=6, random_state=7)
    _, X_test, _, _ = train_test_split(X, y, random_state=42)
    for user, result in results.items():
        expected = np.load(tmp / f"{user}.npy")
        for uri in (result["model_uri"], f"runs:/{result['run_id']}/model"):
            model = mlflow.sklearn.load_model(uri)
            np.testing.assert_array_equal(model.predict_proba(X_test), expected)
