"""A varied MLflow history, logged with the real client into a real ``mlflow server``.

Run as a script (``python mlflow_history.py URL``) so that the logging process holds no state of
the test process (mlflow's fluent API keeps an active run and a tracking URI per process).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

LONG_HISTORY = 3_000


def log_history(url: str) -> None:
    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    alpha = client.create_experiment("alpha", tags={"team": "vision", "mlflow.note.content": "first"})
    beta = client.create_experiment("beta")
    client.create_experiment("gamma-empty")
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]] * 5)
    y = np.array([0, 1, 1, 0] * 5)

    mlflow.set_experiment(experiment_id=alpha)
    for i in range(4):
        with mlflow.start_run(run_name=f"train-{i}") as run:
            mlflow.log_params({"lr": str(0.1 * (i + 1)), "layers": str(i + 2)})
            mlflow.set_tags({"stage": "dev" if i % 2 else "prod", "idx": str(i)})
            mlflow.log_metric("acc", 0.5 + i / 10, step=0)
            mlflow.log_metric("acc", 0.6 + i / 10, step=1)
            mlflow.log_metric("weird", [math.nan, math.inf, -math.inf, 1.5][i], step=0)
            if i == 0:
                client.log_batch(
                    run.info.run_id,
                    metrics=[
                        mlflow.entities.Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s)
                        for s in range(LONG_HISTORY)
                    ],
                )
                frame = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
                mlflow.log_input(mlflow.data.from_pandas(frame, name="train-set"), context="training")
                with tempfile.TemporaryDirectory() as folder:
                    os.makedirs(os.path.join(folder, "plots", "deep", "er"))
                    with open(os.path.join(folder, "plots", "deep", "er", "curve.txt"), "w") as f:
                        f.write("nested\n")
                    with open(os.path.join(folder, "notes.md"), "w") as f:
                        f.write("# notes\n")
                    with open(os.path.join(folder, "blob.bin"), "wb") as f:
                        f.write(bytes(range(256)) * 50)
                    mlflow.log_artifacts(folder)
                with mlflow.start_run(run_name="child", nested=True):
                    mlflow.log_metric("child_metric", 3.0)
            if i == 1:
                model = LogisticRegression().fit(X, y)
                info = mlflow.sklearn.log_model(
                    model, name="clf", registered_model_name="classifier", input_example=X[:2]
                )
                mlflow.log_metric("model_acc", 0.93, model_id=info.model_id)
            if i == 2:
                model = LogisticRegression(C=0.5).fit(X, y)
                mlflow.sklearn.log_model(model, name="clf", registered_model_name="classifier")
            if i == 3:
                mlflow.log_metric("acc", 0.99, step=2)
        if i == 3:
            client.delete_run(run.info.run_id)

    with mlflow.start_run(experiment_id=beta, run_name="soon-gone") as run:
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 2.0)
    client.set_terminated(run.info.run_id, "FAILED")
    client.delete_experiment(beta)

    client.set_registered_model_tag("classifier", "owner", "vision-team")
    client.update_registered_model("classifier", description="the classifier")
    client.transition_model_version_stage("classifier", "1", "Production")
    client.transition_model_version_stage("classifier", "2", "Staging")
    client.set_registered_model_alias("classifier", "champion", "2")
    client.set_model_version_tag("classifier", "1", "validated", "yes")
    client.update_model_version("classifier", "2", description="second try")
    client.create_registered_model("empty-model", tags={"k": "v"}, description="no versions")
    third = client.create_model_version("classifier", f"runs:/{run.info.run_id}/none", run_id=run.info.run_id)
    client.delete_model_version("classifier", third.version)


if __name__ == "__main__":
    log_history(sys.argv[1])
