"""MLflow's SQL store read straight from its SQLite file: read-only, no SQLAlchemy.

The file is opened with ``mode=ro`` (nothing, not even a journal, is written to it), and checked to
be an MLflow database (its tables and columns) before anything is read. Runs stream from one
cursor; each run's params, tags and inputs are read by key (MLflow indexes them by run). Metric
points, the bulk, are read in Arrow batches by a process of their own (``sqlite_points``), so
memory stays bounded by a few batches whatever the file.
"""

from __future__ import annotations

import math
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator

import pyarrow as pa
from trackledger.importer.records import (
    SourceError,
    SourceExperiment,
    SourceLoggedModel,
    SourceModelVersion,
    SourceRegisteredModel,
    SourceRun,
)
from trackledger.importer.sqlite_points import PointsProcess
from trackledger.importer.sqlite_points_reader import sql_in
from trackledger.ledger.events import Dataset, Metric, ModelOutput, Param, Tag

# Tables and columns read here: a file without them is not an MLflow 3 store.
REQUIRED = {
    "experiments": {"experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time"},
    "experiment_tags": {"key", "value", "experiment_id"},
    "runs": {"run_uuid", "name", "user_id", "status", "start_time", "end_time", "lifecycle_stage"},
    "params": {"key", "value", "run_uuid"},
    "tags": {"key", "value", "run_uuid"},
    "metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    "latest_metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    "datasets": {"dataset_uuid", "name", "digest", "dataset_source_type", "dataset_source"},
    "inputs": {"input_uuid", "source_type", "source_id", "destination_type", "destination_id"},
    "input_tags": {"input_uuid", "name", "value"},
    "logged_models": {"model_id", "experiment_id", "name", "status", "source_run_id"},
    "logged_model_params": {"model_id", "param_key", "param_value"},
    "logged_model_tags": {"model_id", "tag_key", "tag_value"},
    "logged_model_metrics": {"model_id", "metric_name", "metric_timestamp_ms", "metric_step", "run_id"},
    "registered_models": {"name", "creation_time", "last_updated_time", "description"},
    "model_versions": {"name", "version", "current_stage", "source", "run_id", "storage_location"},
    "registered_model_tags": {"key", "value", "name"},
    "model_version_tags": {"key", "value", "name", "version"},
    "registered_model_aliases": {"alias", "version", "name"},
}
LOGGED_MODEL_STATUS = {
    0: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}
CACHE_KB = 64 * 1024  # SQLite's page cache, per connection (its default is 2 MB)
# Tables left out of the check before the import: checking every page of the metric points would
# read the whole file first (6 s of a 1.3 GB store's import); a damaged page there is reported
# when its run is read.
UNCHECKED = {"metrics"}


class SqliteSource:
    def __init__(self, url: str):
        # sqlite:///relative.db, sqlite:////absolute/path.db (SQLAlchemy's spelling)
        self.path = os.path.abspath(url.removeprefix("sqlite:///"))
        if not os.path.isfile(self.path):
            raise SourceError(f"{url}: no such file")
        self.uri = f"file:{urllib.parse.quote(self.path)}?mode=ro"
        try:
            self.con = self._connect()
            self._check()
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"{self.path} is not a readable SQLite database ({exc})") from None
        self.points = PointsProcess(self.path, self.uri)
        self.points.start()  # it loads its libraries while the importer reads experiments and runs

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
        con.execute(f"PRAGMA cache_size = -{CACHE_KB}")
        return con

    def _check(self) -> None:
        found = {
            name: {row[1] for row in self.con.execute(f"PRAGMA table_info('{name}')")} for name in REQUIRED
        }
        missing = [
            f"{table}.{column}" if found[table] else table
            for table, columns in REQUIRED.items()
            for column in (sorted(columns - found[table]) if found[table] else [""])
        ]
        if missing:
            shown = ", ".join(dict.fromkeys(m.rstrip(".") for m in missing[:5]))
            raise SourceError(f"{self.path} is not an MLflow tracking database (no {shown})")
        for table in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            if table[0] not in UNCHECKED:
                problems = self.con.execute("SELECT * FROM pragma_quick_check(?)", table).fetchall()
                if problems != [("ok",)]:
                    raise SourceError(f"{self.path} is damaged: {problems[0][0]}")

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    def close(self) -> None:
        self.con.close()
        self.points.close()

    # Experiments and runs ------------------------------------------------------------

    def experiments(self) -> list[SourceExperiment]:
        tags: dict[str, list[Tag]] = {}
        for key, value, exp_id in self.con.execute(
            "SELECT key, value, experiment_id FROM experiment_tags ORDER BY experiment_id, key"
        ):
            tags.setdefault(str(exp_id), []).append(Tag(key, value or ""))
        return [
            SourceExperiment(
                experiment_id=str(exp_id),
                name=name,
                artifact_location=location or "",
                lifecycle_stage=stage or "active",
                creation_time=created or 0,
                last_update_time=updated or created or 0,
                tags=tags.get(str(exp_id), []),
            )
            for exp_id, name, location, stage, created, updated in self.con.execute(
                "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
                "last_update_time FROM experiments ORDER BY experiment_id"
            )
        ]

    def count_runs(self, experiment_ids: list[str]) -> int:
        ids = [int(e) for e in experiment_ids]
        (runs,) = self.con.execute(
            f"SELECT count(*) FROM runs WHERE experiment_id IN {sql_in(ids)}", ids
        ).fetchone()
        return runs

    def runs(self, experiment_ids: list[str]) -> Iterator[SourceRun]:
        ids = [int(e) for e in experiment_ids]
        cursor = self.con.cursor()  # its own cursor: the per-run reads below use the connection's
        cursor.execute(
            "SELECT run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, "
            f"artifact_uri, deleted_time FROM runs WHERE experiment_id IN {sql_in(ids)} "
            "ORDER BY experiment_id, start_time, run_uuid",
            ids,
        )
        for run_id, exp_id, name, user, status, start, end, stage, uri, deleted in cursor:
            yield SourceRun(
                run_id=run_id,
                experiment_id=str(exp_id),
                name=name or "",
                user_id=user or "",
                status=status or "RUNNING",
                start_time=start or 0,
                end_time=end,
                lifecycle_stage=stage or "active",
                artifact_uri=uri or "",
                deleted_time=deleted,
                params=[
                    Param(k, v)
                    for k, v in self.con.execute(
                        "SELECT key, value FROM params WHERE run_uuid = ? ORDER BY key", (run_id,)
                    )
                ],
                tags=[
                    Tag(k, v or "")
                    for k, v in self.con.execute(
                        "SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY key", (run_id,)
                    )
                ],
                datasets=self._datasets(run_id),
                model_inputs=self._models(run_id, "RUN_INPUT"),
                model_outputs=self._models(run_id, "RUN_OUTPUT"),
                latest=[
                    Metric(k, math.nan if nan else float(v), ts, step)
                    for k, v, ts, step, nan in self.con.execute(
                        "SELECT key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid = ? "
                        "ORDER BY key",
                        (run_id,),
                    )
                ],
            )

    def _datasets(self, run_id: str) -> list[Dataset]:
        rows = self.con.execute(
            """SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source,
                      d.dataset_schema, d.dataset_profile
               FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
               WHERE i.destination_type = 'RUN' AND i.destination_id = ? AND i.source_type = 'DATASET'
               ORDER BY i.rowid""",
            (run_id,),
        ).fetchall()
        datasets = []
        for input_uuid, name, digest, source_type, source, schema, profile in rows:
            tags = [
                Tag(k, v)
                for k, v in self.con.execute(
                    "SELECT name, value FROM input_tags WHERE input_uuid = ? ORDER BY name", (input_uuid,)
                )
            ]
            datasets.append(Dataset(name, digest, source_type, source, schema, profile, tags))
        return datasets

    def _models(self, run_id: str, kind: str) -> list[ModelOutput]:
        return [
            ModelOutput(model_id, step or 0)
            for model_id, step in self.con.execute(
                "SELECT destination_id, step FROM inputs WHERE source_type = ? AND source_id = ? "
                "ORDER BY rowid",
                (kind, run_id),
            )
        ]

    def metric_chunks(self, runs: list[SourceRun], size: int) -> Iterator[tuple[str, pa.StructArray]]:
        """In run id order (see ``sqlite_points``)."""
        return self.points.chunks([run.run_id for run in runs], size)

    # Logged models and the registry ----------------------------------------------------

    def logged_models(self, experiment_ids: list[str]) -> Iterator[SourceLoggedModel]:
        ids = [int(e) for e in experiment_ids]
        rows = self.con.execute(
            "SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms, "
            "last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id "
            f"FROM logged_models WHERE experiment_id IN {sql_in(ids)} "
            "ORDER BY creation_timestamp_ms, model_id",
            ids,
        ).fetchall()
        for model_id, exp_id, name, location, created, updated, status, stage, kind, run_id in rows:
            yield SourceLoggedModel(
                model_id=model_id,
                experiment_id=str(exp_id),
                name=name,
                artifact_location=location or "",
                creation_time=created or 0,
                last_updated_time=updated or created or 0,
                status=LOGGED_MODEL_STATUS.get(status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
                lifecycle_stage=stage or "active",
                model_type=kind or "",
                source_run_id=run_id,
                params=[
                    Param(k, v)
                    for k, v in self.con.execute(
                        "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ? "
                        "ORDER BY param_key",
                        (model_id,),
                    )
                ],
                tags=[
                    Tag(k, v)
                    for k, v in self.con.execute(
                        "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ? "
                        "ORDER BY tag_key",
                        (model_id,),
                    )
                ],
            )

    def registered_models(self) -> Iterator[SourceRegisteredModel]:
        rows = self.con.execute(
            "SELECT name, creation_time, last_updated_time, description FROM registered_models "
            "ORDER BY creation_time, name"
        ).fetchall()
        for name, created, updated, description in rows:
            yield SourceRegisteredModel(
                name=name,
                creation_time=created or 0,
                last_updated_time=updated or created or 0,
                description=description or "",
                tags=[
                    Tag(k, v or "")
                    for k, v in self.con.execute(
                        "SELECT key, value FROM registered_model_tags WHERE name = ? ORDER BY key", (name,)
                    )
                ],
                aliases=[
                    (alias, version)
                    for alias, version in self.con.execute(
                        "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias",
                        (name,),
                    )
                ],
                versions=self._versions(name),
            )

    def _versions(self, name: str) -> list[SourceModelVersion]:
        versions = []
        for version, created, updated, description, user, stage, source, run_id, storage in self.con.execute(
            "SELECT version, creation_time, last_updated_time, description, user_id, current_stage, source, "
            "run_id, storage_location FROM model_versions WHERE name = ? ORDER BY version",
            (name,),
        ).fetchall():
            tags = [
                Tag(k, v or "")
                for k, v in self.con.execute(
                    "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? ORDER BY key",
                    (name, version),
                )
            ]
            deleted = stage == "Deleted_Internal"
            versions.append(
                SourceModelVersion(
                    version=version,
                    creation_time=created or 0,
                    last_updated_time=updated or created or 0,
                    source=source or "",
                    current_stage="None" if deleted else stage or "None",
                    description=description or "",
                    user_id=user or "",
                    run_id=run_id or None,
                    model_id=_model_id_of(source, storage),
                    deleted=deleted,
                    tags=tags,
                )
            )
        return versions


def _model_id_of(source: str | None, storage_location: str | None) -> str | None:
    """The logged model a version was made from: MLflow 3 sources read ``models:/m-<id>``."""
    for text in (source or "", storage_location or ""):
        if text.startswith("models:/m-"):
            return text.removeprefix("models:/").split("/", 1)[0]
    return None
