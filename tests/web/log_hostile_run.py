"""A run whose name, tag and dataset carry markup, logged by the real mlflow client: the page
must show every one of them as text.

Run as ``python log_hostile_run.py <tracking uri>``; prints the ids it created as JSON.
"""

from __future__ import annotations

import json
import sys

import mlflow
import pandas as pd

MARKUP = "<img src=x onerror=window.__pwned=1>"
SCRIPT = "<script>window.__pwned=2</script>"
EXPERIMENT = "Hostile " + SCRIPT


def main() -> None:
    mlflow.set_tracking_uri(sys.argv[1])
    experiment_id = mlflow.set_experiment(EXPERIMENT).experiment_id
    with mlflow.start_run(run_name="run " + SCRIPT, tags={MARKUP: "value " + SCRIPT}) as run:
        mlflow.log_metric("score", 1.0)
        frame = pd.DataFrame({"x": [1, 2, 3]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="data " + MARKUP), context="train")
    print(json.dumps({"experiment_id": experiment_id, "run_id": run.info.run_id}))


if __name__ == "__main__":
    main()
