"""Run reads: runs as MLflow's JSON objects, by id or by search (filter, order_by, view type,
paging)."""

from __future__ import annotations

import duckdb
import msgspec
from trackledger.projections.search import Attribute, Child, Query, Searchable
from trackledger.projections.view_types import lifecycle_condition

# MLflow's spellings with a space ("Run name") and "created" / "Created" are its aliases of
# run_name and start_time.
_RUN_NAME, _START_TIME = Attribute("r.run_name"), Attribute("r.start_time", numeric=True)
RUNS = Searchable(
    "runs r",
    {
        "run_id": Attribute("r.run_id"),
        "run_uuid": Attribute("r.run_id"),
        "run_name": _RUN_NAME,
        "run name": _RUN_NAME,
        "Run name": _RUN_NAME,
        "Run Name": _RUN_NAME,
        "status": Attribute("r.status"),
        "user_id": Attribute("r.user_id"),
        "artifact_uri": Attribute("r.artifact_uri"),
        "lifecycle_stage": Attribute("r.lifecycle_stage"),
        "experiment_id": Attribute("r.experiment_id"),
        "start_time": _START_TIME,
        "created": _START_TIME,
        "Created": _START_TIME,
        "end_time": Attribute("r.end_time", numeric=True),
    },
    {
        "metric": Child("latest_metrics", "{x}.run_id = r.run_id", numeric=True),
        "param": Child("params", "{x}.run_id = r.run_id"),
        "tag": Child("run_tags", "{x}.run_id = r.run_id"),
        "dataset": Child("dataset_inputs", "{x}.run_id = r.run_id", fields=("name", "digest", "context")),
    },
)
# MLflow's order after the order_by keys: newest first.
DEFAULT_ORDER = "r.start_time DESC, r.run_id"

# A page of runs is one narrow query: each run's JSON object is kept current by apply in
# ``runs.run_json``, and the page's array is put together in DuckDB, which costs a third of
# fetching the texts into Python to join them. Reading the child tables here instead scanned each
# of them for every page, and building dicts in Python, then JSON from them, cost as much again.
RUNS_JSON = """SELECT coalesce('[' || string_agg(run_json, ',' ORDER BY page.i) || ']', '[]')
               FROM (SELECT unnest(?::VARCHAR[]) AS run_id, unnest(range(?)) AS i) page
               JOIN runs USING (run_id)"""


def runs_json(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> bytes:
    """One JSON array of MLflow run objects, in the order of ``run_ids`` (unknown ids are skipped).

    Non-finite metric values are the strings "NaN", "Infinity" and "-Infinity".
    """
    run_ids = list(run_ids)
    ((text,),) = con.execute(RUNS_JSON, [run_ids, len(run_ids)]).fetchall()
    return text.encode()


def decode_runs(text: bytes) -> list[dict]:
    """Run dicts from ``runs_json``, with every metric value a float again."""
    found = msgspec.json.decode(text)
    for run in found:
        for metric in run["data"].get("metrics", ()):
            if isinstance(metric["value"], str):
                metric["value"] = float(metric["value"])
    return found


def run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict | None:
    """One run as an MLflow run dict, or None."""
    found = decode_runs(runs_json(con, [run_id]))
    return found[0] if found else None


def run_query(experiment_ids, run_view_type: str = "ACTIVE_ONLY") -> Query:
    """The runs of ``experiment_ids`` in a view type, to which a search adds its filter and order."""
    lifecycle = lifecycle_condition(run_view_type, "r.lifecycle_stage")
    query = RUNS.query().restrict(
        "list_contains(?::VARCHAR[], r.experiment_id)", [str(e) for e in experiment_ids]
    )
    return query.restrict(lifecycle)


def search_runs_json(
    con: duckdb.DuckDBPyConnection,
    experiment_ids,
    filter: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    max_results: int = 1000,
    order_by=(),
    page_token: str | None = None,
) -> tuple[bytes, str | None]:
    """A page of runs as ``runs_json`` gives them, and the token of the next page (None if last).
    Raises ``InvalidQuery`` naming what is wrong with the search."""
    query = run_query(experiment_ids or (), run_view_type).filter(filter).order_by(order_by)
    rows, token = query.then_by(DEFAULT_ORDER).page(con, "r.run_id", max_results, page_token)
    return runs_json(con, [row[0] for row in rows]), token


def params(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, str]:
    """The run's params, key -> value."""
    return dict(con.execute("SELECT key, value FROM params WHERE run_id = ?", [run_id]).fetchall())


def runs_index(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """run_id -> (experiment_id, lifecycle_stage) of every run, for validating writes."""
    rows = con.execute("SELECT run_id, experiment_id, lifecycle_stage FROM runs").fetchall()
    return {run_id: (experiment_id, stage) for run_id, experiment_id, stage in rows}


def dataset_summaries(
    con: duckdb.DuckDBPyConnection, experiment_ids: list[str], limit: int = 1000
) -> list[dict]:
    """The distinct (experiment, dataset name, digest, context) logged to the experiments' runs."""
    rows = con.execute(
        """SELECT DISTINCT r.experiment_id, d.name, d.digest, d.context
           FROM dataset_inputs d JOIN runs r USING (run_id)
           WHERE r.experiment_id IN (SELECT unnest(?::VARCHAR[]))
           ORDER BY 1, 2, 3, 4 LIMIT ?""",
        [experiment_ids, limit],
    ).fetchall()
    return [
        {"experiment_id": e, "name": n, "digest": d, **({"context": c} if c is not None else {})}
        for e, n, d, c in rows
    ]
