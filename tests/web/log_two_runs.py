"""A training script, as people write them: two runs of one experiment with different C.

Run as ``python log_two_runs.py <tracking uri>``; prints the ids it created as JSON.
"""

from __future__ import annotations

import json
import sys

import mlflow
import mlflow.sklearn
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

EXPERIMENT = "Churn Prediction"


def train(name: str, user: str, C: float) -> dict:
    X, y = make_classification(n_samples=200, n_features=6, random_state=42)
    with mlflow.start_run(run_name=name, tags={"mlflow.user": user, "team": "growth"}) as run:
        mlflow.log_params({"C": C, "solver": "liblinear", "random_state": 42})
        model = LogisticRegression(C=C, solver="liblinear", random_state=42)
        for step, n in enumerate((50, 100, 150, 200)):  # a learning curve: one point per data size
            model.fit(X[:n], y[:n])
            mlflow.log_metric("accuracy", model.score(X, y), step=step)
            mlflow.log_metric("train_size", n, step=step)
        info = mlflow.sklearn.log_model(model, name="model")
    return {"run_id": run.info.run_id, "model_id": info.model_id, "C": str(C)}


def main() -> None:
    mlflow.set_tracking_uri(sys.argv[1])
    experiment_id = mlflow.set_experiment(EXPERIMENT).experiment_id
    runs = [train("alice-baseline", "alice", 0.1), train("bob-regularised", "bob", 0.5)]
    print(json.dumps({"experiment_id": experiment_id, "runs": runs}))


if __name__ == "__main__":
    main()
