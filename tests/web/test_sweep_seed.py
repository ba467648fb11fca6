"""The shared sweep seed logs what it promises: other web tests rely on its shape."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def sweep_size() -> int:
    return 40


def test_the_sweep_has_its_runs_failures_children_and_the_team(sweep, web_server):
    client = MlflowClient(tracking_uri=web_server.url)
    runs = client.search_runs([sweep.experiment_id], max_results=1000)
    assert len(runs) == 40 == len(sweep.runs)
    assert {run.info.status for run in runs} == {"FINISHED", "FAILED"}
    assert all(set(run.data.params) == {"lr", "depth", "optimizer", "batch_size", "dropout"} for run in runs)

    folds = sweep.by_name("fold-0")
    assert len(folds) == 2 and len({fold.parent_id for fold in folds}) == 2  # one per parent
    child = client.get_run(folds[0].run_id)
    assert child.data.tags["mlflow.parentRunId"] == folds[0].parent_id

    finished = next(run for run in sweep.runs if run.status == "FINISHED")
    history = client.get_metric_history(finished.run_id, "loss")
    assert [m.step for m in history] == list(range(300))
    failed = next(run for run in sweep.runs if run.status == "FAILED")
    assert len(client.get_metric_history(failed.run_id, "val_acc")) == failed.steps < 300

    team = {run.data.tags["mlflow.user"]: run for run in client.search_runs([sweep.team_experiment_id])}
    assert set(team) == {"alice", "bob"}
    assert [m.step for m in client.get_metric_history(team["alice"].info.run_id, "accuracy")] == [0]
