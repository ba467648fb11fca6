"""An MLflow SQLite store of any size, written directly with sqlite3 in MLflow's own schema.

The schema comes from MLflow itself (its store creates and migrates an empty database once);
rows are then bulk-inserted, far faster than logging them through a server.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

_SCHEMA_SCRIPT = """
import sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
SqlAlchemyStore(f"sqlite:///{sys.argv[1]}", sys.argv[2])
"""


def empty_store(path: Path) -> None:
    """An empty MLflow database at ``path`` (the schema made by MLflow)."""
    template = Path(str(path) + ".template")
    subprocess.run(
        [sys.executable, "-c", _SCHEMA_SCRIPT, str(template), str(path.parent / "mlartifacts")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.move(template, path)


def generate(
    path: Path, runs: int, points_per_run: int, params: int = 10, tags: int = 10, experiments: int = 4
) -> None:
    """``runs`` runs over ``experiments`` experiments, each with ``params`` params, ``tags`` tags and
    ``points_per_run`` metric points over 5 keys."""
    empty_store(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.executemany(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time) VALUES (?, ?, ?, 'active', ?, ?)",
        [
            (e, f"synthetic-{e}", f"mlflow-artifacts:/{e}", 1_700_000_000_000 + e, 1_700_000_000_000 + e)
            for e in range(1, experiments + 1)
        ],
    )
    keys = [f"metric_{k}" for k in range(5)]
    for r in range(runs):
        run_id = uuid.UUID(int=r + 1).hex
        exp = 1 + r % experiments
        start = 1_700_000_000_000 + r * 1000
        con.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?, ?, 'LOCAL', '', '', ?, 'FINISHED', ?, ?, '', 'active', ?, ?)",
            (
                run_id,
                f"run-{r}",
                f"user{r % 7}",
                start,
                start + 999,
                f"mlflow-artifacts:/{exp}/{run_id}/artifacts",
                exp,
            ),
        )
        con.executemany(
            "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
            [(f"param_{p}", str(p * r), run_id) for p in range(params)],
        )
        con.executemany(
            "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
            [(f"tag_{t}", f"value-{t}-{r}", run_id) for t in range(tags)]
            + [("mlflow.runName", f"run-{r}", run_id)],
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
            (
                (keys[i % 5], (i * 7919 % 1000) / 1000.0, start + i, run_id, i // 5)
                for i in range(points_per_run)
            ),
        )
    con.commit()
    con.close()
