"""``trackledger import --from ./mlruns``: MLflow's file store, read through MLflow's own migration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import ViewType

from tests.api.conftest import ServerProcess
from tests.importer.compare import _run
from tests.importer.conftest import trackledger

LOG_TO_FILE_STORE = """
import math, os, mlflow
mlflow.set_tracking_uri("file:./mlruns")
exp = mlflow.create_experiment("from-files", tags={"origin": "disk"})
with mlflow.start_run(experiment_id=exp, run_name="kept") as run:
    mlflow.log_params({"lr": "0.1", "depth": "3"})
    mlflow.set_tag("kind", "file-store")
    for step in range(50):
        mlflow.log_metric("loss", 1 / (step + 1), step=step)
    mlflow.log_metric("odd", math.nan)
    os.makedirs("out/deep/er", exist_ok=True)
    open("out/deep/er/x.txt", "w").write("file store artifact")
    mlflow.log_artifacts("out")
with mlflow.start_run(experiment_id=exp, run_name="gone") as gone:
    mlflow.log_metric("m", 1.0)
mlflow.MlflowClient().delete_run(gone.info.run_id)
"""


def test_a_file_store_comes_over(tmp_path):
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    subprocess.run([sys.executable, "-c", LOG_TO_FILE_STORE], cwd=tmp_path, env=env, check=True, timeout=300)
    mlruns = tmp_path / "mlruns"
    before = sorted(str(p) for p in mlruns.rglob("*"))
    out = trackledger("import", "--from", str(mlruns), "--store", str(tmp_path / "data"))
    assert out.returncode == 0, out.stderr
    assert sorted(str(p) for p in mlruns.rglob("*")) == before  # the source is left as it was

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        source = MlflowClient(f"file:{mlruns}")
        exp = source.get_experiment_by_name("from-files")
        expected = [_run(r) for r in source.search_runs([exp.experiment_id], run_view_type=ViewType.ALL)]
        history = [(m.step, m.value) for m in source.get_metric_history(expected[-1]["run_id"], "loss")]
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]
    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    try:
        client = MlflowClient(server.url)
        got = [_run(r) for r in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL)]
        kept = next(r for r in got if r["run_name"] == "kept")
        got_history = [(m.step, m.value) for m in client.get_metric_history(kept["run_id"], "loss")]
        local = client.download_artifacts(kept["run_id"], "deep/er/x.txt", str(tmp_path / "dl"))
        artifact = Path(local).read_text()
    finally:
        server.stop()
    for runs in (expected, got):
        for run in runs:
            run.pop("artifact_uri")  # file:// there, the artifact proxy's here
    assert sorted(got, key=lambda r: r["run_id"]) == sorted(expected, key=lambda r: r["run_id"])
    assert got_history == history and len(history) == 50
    assert artifact == "file store artifact"


def test_a_directory_that_is_no_file_store_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    out = trackledger("import", "--from", str(tmp_path / "empty"), "--store", str(tmp_path / "data"))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not be read as an MLflow file store" in lines[0]
    assert not (tmp_path / "data").exists()
