"""A history that goes on after an import: ``before`` logs it, ``after`` changes it the ways a
team's live MLflow does (more points, params and tags set or deleted, a running run ended, runs
deleted and restored, a dataset input, an artifact, a new run).

Run as a script (``python mlflow_changes.py URL before|after IDS.json``), like ``mlflow_history``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric

T0 = 1_750_000_000_000


def _artifact(client: MlflowClient, run_id: str, name: str, text: str, folder: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        client.log_artifact(run_id, path, folder)


def before(client: MlflowClient) -> dict:
    exp = client.create_experiment("live")
    ids = {}
    for name in ("growing", "done", "doomed", "back", "quiet"):
        ids[name] = client.create_run(exp, run_name=name, start_time=T0 + len(ids)).info.run_id
    growing = ids["growing"]
    client.log_batch(
        growing,
        metrics=[Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in range(100)],
        params=[mlflow.entities.Param("lr", "0.1")],
        tags=[mlflow.entities.RunTag("stage", "dev"), mlflow.entities.RunTag("drop", "me")],
    )
    _artifact(client, growing, "first.txt", "first\n")
    for name in ("done", "doomed", "back", "quiet"):
        client.log_metric(ids[name], "m", 1.0, timestamp=T0, step=0)
        client.set_tag(ids[name], "t", name)
        client.set_terminated(ids[name], "FINISHED", end_time=T0 + 1000)
    client.delete_run(ids["back"])
    return ids


def after(client: MlflowClient, ids: dict) -> None:
    growing = ids["growing"]
    client.log_batch(
        growing,
        metrics=[Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in range(100, 200)]
        + [Metric("odd", math.nan, T0, 0), Metric("odd", math.inf, T0 + 1, 1)],
        params=[mlflow.entities.Param("epochs", "10")],
        tags=[mlflow.entities.RunTag("stage", "prod")],
    )
    client.delete_tag(growing, "drop")
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=growing):
        frame = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="later-set"), context="training")
    _artifact(client, growing, "second.txt", "second\n", "later")
    client.set_terminated(growing, "FINISHED", end_time=T0 + 5000)
    client.set_tag(ids["done"], "t", "changed")
    client.log_metric(ids["done"], "m", 2.0, timestamp=T0 + 10, step=1)
    client.delete_run(ids["doomed"])
    client.restore_run(ids["back"])
    fresh = client.create_run(client.get_run(growing).info.experiment_id, run_name="fresh")
    client.log_metric(fresh.info.run_id, "m", 3.0, timestamp=T0, step=0)
    client.set_terminated(fresh.info.run_id, "FINISHED", end_time=T0 + 2000)


if __name__ == "__main__":
    url, phase, ids_file = sys.argv[1:4]
    client = MlflowClient(url)
    if phase == "before":
        with open(ids_file, "w") as f:
            json.dump(before(client), f)
    else:
        with open(ids_file) as f:
            after(client, json.load(f))
