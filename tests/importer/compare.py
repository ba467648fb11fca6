"""The same mlflow-client reads against two servers, as comparable plain data."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import ViewType

X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def _nan_safe(value):
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def _run(run) -> dict:
    info = run.info
    return {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "lifecycle_stage": info.lifecycle_stage,
        "artifact_uri": info.artifact_uri,
        "params": run.data.params,
        "tags": run.data.tags,
        "metrics": {k: _nan_safe(v) for k, v in run.data.metrics.items()},
        "datasets": sorted(
            (
                d.dataset.name,
                d.dataset.digest,
                d.dataset.source_type,
                d.dataset.source,
                d.dataset.schema,
                d.dataset.profile,
                sorted((t.key, t.value) for t in d.tags),
            )
            for d in (run.inputs.dataset_inputs if run.inputs else [])
        ),
    }


def _version(v) -> dict:
    return {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "current_stage": v.current_stage,
        "description": v.description or "",
        "source": v.source,
        "run_id": v.run_id,
        "tags": v.tags,
        "aliases": sorted(v.aliases),
    }


def reads(url: str, workdir: Path, registry: bool = True) -> dict:
    """What a user sees through the mlflow client at ``url`` (``registry``: also the registry of
    ``mlflow_history.py`` and its models' predictions)."""
    client = MlflowClient(url)
    exps = client.search_experiments(view_type=ViewType.ALL, order_by=["name"])
    out: dict = {
        "experiments": [
            (
                e.experiment_id,
                e.name,
                e.lifecycle_stage,
                e.artifact_location,
                e.creation_time,
                e.last_update_time,
                {k: v for k, v in e.tags.items()},
            )
            for e in exps
        ]
    }
    ids = [e.experiment_id for e in exps]
    out["runs_all"] = [
        _run(r)
        for r in client.search_runs(ids, run_view_type=ViewType.ALL, order_by=["attributes.start_time DESC"])
    ]
    out["runs_filtered"] = [
        r.info.run_id
        for r in client.search_runs(
            ids,
            "metrics.acc > 0.55 and params.layers != '9'",
            order_by=["metrics.acc DESC", "attributes.run_name"],
        )
    ]
    out["runs_by_tag"] = [
        r.info.run_id for r in client.search_runs(ids, "tags.stage = 'prod'", order_by=["params.lr ASC"])
    ]
    out["deleted_runs"] = [
        r.info.run_id for r in client.search_runs(ids, run_view_type=ViewType.DELETED_ONLY)
    ]
    out["histories"] = {
        (r["run_id"], key): [
            (m.step, m.timestamp, _nan_safe(m.value))
            for m in sorted(client.get_metric_history(r["run_id"], key), key=lambda m: (m.step, m.timestamp))
        ]
        for r in out["runs_all"]
        for key in r["metrics"]
    }
    out["artifacts"] = {}
    for r in out["runs_all"]:
        folder = workdir / f"{r['run_id']}-{abs(hash(url))}"
        local = (
            client.download_artifacts(r["run_id"], "", str(folder))
            if client.list_artifacts(r["run_id"])
            else None
        )
        if local:
            out["artifacts"][r["run_id"]] = {
                str(p.relative_to(local)): p.read_bytes()
                for p in sorted(Path(local).rglob("*"))
                if p.is_file()
            }
    if registry:
        _registry_reads(client, url, ids, out)
    return out


def _registry_reads(client: MlflowClient, url: str, ids: list[str], out: dict) -> None:
    out["registered"] = [
        (
            m.name,
            m.description or "",
            m.tags,
            m.creation_timestamp,
            m.last_updated_timestamp,
            sorted(m.aliases.items()),
            sorted((v.version, v.current_stage) for v in m.latest_versions),
        )
        for m in client.search_registered_models(order_by=["name"])
    ]
    out["versions"] = [
        _version(v) for v in client.search_model_versions("name = 'classifier'", order_by=["version_number"])
    ]
    out["champion"] = _version(client.get_model_version_by_alias("classifier", "champion"))
    out["logged_models"] = sorted(
        (
            m.model_id,
            m.name,
            m.experiment_id,
            str(m.status),
            m.source_run_id,
            m.params,
            m.tags,
            sorted((x.key, x.value, x.step) for x in (m.metrics or [])),
        )
        for m in client.search_logged_models(ids)
    )
    import mlflow

    mlflow.set_tracking_uri(url)
    out["predictions"] = {
        uri: mlflow.pyfunc.load_model(uri).predict(X).tolist()
        for uri in ("models:/classifier/1", "models:/classifier@champion")
    }


def differences(a: dict, b: dict) -> list[str]:
    return [key for key in a if a[key] != b.get(key)]


if __name__ == "__main__":
    import sys

    with tempfile.TemporaryDirectory() as folder:
        first, second = reads(sys.argv[1], Path(folder)), reads(sys.argv[2], Path(folder))
    for key in differences(first, second):
        print(key)
        print("  ", first[key])
        print("  ", second[key])
