"""Reads the web page needs beyond the MLflow-shaped Projection queries: one SQL statement each,
against the projection's tables (see the Tables section of README.md for their columns)."""

from __future__ import annotations

import posixpath
import urllib.parse

from trackledger.api.context import ServerContext
from trackledger.api.web.previews import kind_of, preview_url
from trackledger.api.web.runs_table import RunsTable
from trackledger.api.web.views import finite
from trackledger.projections import runs
from trackledger.projections.filters import OrderKey
from trackledger.projections.search import sort_term

ARTIFACT_URI_PREFIX = "mlflow-artifacts:/"
ARTIFACT_DOWNLOAD = "/api/2.0/mlflow-artifacts/artifacts/"
MAX_ARTIFACT_FILES = 5_000


def _rows(ctx: ServerContext, sql: str, params: list | tuple = ()) -> list[dict]:
    """Trusted, parameterised SELECT over the projection (``Projection.read_records``)."""
    return ctx.projection.read_records(sql, params)


# Experiments --------------------------------------------------------------------------

EXPERIMENTS_OVERVIEW = """
    WITH run_counts AS (
        SELECT experiment_id, count(*) AS run_count FROM runs
        WHERE lifecycle_stage = 'active' GROUP BY experiment_id
    ), activity AS (
        SELECT experiment_id, max(ts) AS last_ts FROM events GROUP BY experiment_id
    )
    SELECT e.experiment_id, e.name, e.lifecycle_stage, e.creation_time,
           coalesce(c.run_count, 0) AS run_count,
           greatest(coalesce(a.last_ts, 0), coalesce(e.last_update_time, 0)) AS last_activity
    FROM experiments e
    LEFT JOIN run_counts c ON c.experiment_id = e.experiment_id
    LEFT JOIN activity a ON a.experiment_id = e.experiment_id
    WHERE e.lifecycle_stage = 'active' OR ?
    ORDER BY last_activity DESC, e.name
"""


def live_seq(ctx: ServerContext) -> int:
    """The seq a page's reads include at least: a live page follows the event stream after it
    (taken before the flush, so nothing is missed in between; a point may come twice)."""
    seq = ctx.ledger.durable_seq
    ctx.projection.flush()
    return seq


def experiments_overview(ctx: ServerContext, include_deleted: bool) -> list[dict]:
    return _rows(ctx, EXPERIMENTS_OVERVIEW, [include_deleted])


def experiment_choices(ctx: ServerContext) -> list[dict]:
    return _rows(ctx, "SELECT experiment_id, name FROM experiments ORDER BY name")


# Runs table ---------------------------------------------------------------------------


def run_keys(ctx: ServerContext, experiment_id: str) -> tuple[list[str], list[str]]:
    """Every param key and metric key logged in the experiment: the columns one can choose."""
    rows = _rows(
        ctx,
        """SELECT 'p' AS kind, key FROM (SELECT DISTINCT p.key FROM params p JOIN runs r USING (run_id)
                                          WHERE r.experiment_id = ?)
           UNION ALL
           SELECT 'm', key FROM (SELECT DISTINCT m.key FROM latest_metrics m JOIN runs r USING (run_id)
                                 WHERE r.experiment_id = ?)
           ORDER BY 1, 2""",
        [experiment_id, experiment_id],
    )
    return [r["key"] for r in rows if r["kind"] == "p"], [r["key"] for r in rows if r["kind"] == "m"]


# The fixed columns' sort: a run attribute, or an expression sorted as attributes are.
FIXED_SORT = {"status": "status", "name": "run_name", "user": "user_id", "start": "start_time"}
# two int64 times can differ by more than int64 holds
SORT_EXPRESSIONS = {"duration": "r.end_time::HUGEINT - r.start_time"}
SORT_ENTITIES = {"p": "param", "m": "metric"}


def runs_page(ctx: ServerContext, experiment_id: str, table: RunsTable) -> None:
    """Fills ``table.rows`` and ``table.total`` from the runs search's query, with a join per chosen
    column. Raises ``projections.InvalidQuery`` for a filter that does not parse."""
    q = table.query
    query = runs.run_query([experiment_id], q.view_type).filter(q.filter)
    columns = ["r.run_id", "r.run_name", "r.status", "r.user_id", "r.start_time", "r.end_time"]
    for i, key in enumerate(table.params):
        query.join(f"LEFT JOIN params p{i} ON p{i}.run_id = r.run_id AND p{i}.key = ?", key)
        columns.append(f"p{i}.value AS p{i}")
    for i, key in enumerate(table.metrics):
        query.join(f"LEFT JOIN latest_metrics m{i} ON m{i}.run_id = r.run_id AND m{i}.key = ?", key)
        columns.append(f"m{i}.value AS m{i}")

    descending = q.direction == "desc"
    kind, _, key = q.sort.partition(":")
    if kind in SORT_ENTITIES:
        query.order_keys([OrderKey(SORT_ENTITIES[kind], key, descending)])
    elif q.sort in FIXED_SORT:
        query.order_keys([OrderKey("attribute", FIXED_SORT[q.sort], descending)])
    else:
        query.then_by(sort_term(SORT_EXPRESSIONS[q.sort], descending))
    query.then_by(runs.DEFAULT_ORDER)

    rows, table.total = ctx.projection.query(query.window, ", ".join(columns), q.offset, q.per_page)
    table.rows = [
        {
            "run_id": r["run_id"],
            "name": r["run_name"],
            "status": r["status"],
            "user": r["user_id"],
            "start_time": r["start_time"],
            "duration": r["end_time"] - r["start_time"] if r["end_time"] and r["start_time"] else None,
            "params": [r[f"p{i}"] for i in range(len(table.params))],
            "metrics": [finite(r[f"m{i}"]) for i in range(len(table.metrics))],
        }
        for r in rows
    ]


# Run page -----------------------------------------------------------------------------


def artifact_roots(ctx: ServerContext, run: dict, models: list[dict]) -> list[dict]:
    """The run's own artifact folder, then each logged model's (MLflow 3 stores model files there)."""
    roots = [("Run artifacts", run["artifact_uri"])]
    roots += [(f"Logged model {m.get('name', '')}", m.get("artifact_uri", "")) for m in models]
    out = []
    for title, uri in roots:
        if not uri.startswith(ARTIFACT_URI_PREFIX):
            continue  # stored elsewhere (not through this server's proxy): nothing to list or download
        prefix = uri.removeprefix(ARTIFACT_URI_PREFIX).strip("/") + "/"
        files = _rows(
            ctx,
            "SELECT path, size FROM artifacts WHERE starts_with(path, ?) ORDER BY path LIMIT ?",
            [prefix, MAX_ARTIFACT_FILES],
        )
        out.append({"title": title, "uri": uri, "nodes": _tree(prefix, files)})
    return out


def _tree(prefix: str, files: list[dict]) -> list[dict]:
    """Nested folder nodes (``children`` is a list) and file nodes (``children`` is None)."""
    root: dict = {}
    for f in files:
        relative = f["path"][len(prefix) :]
        folder = root
        *dirs, name = relative.split("/")
        for d in dirs:
            folder = folder.setdefault(d + "/", {})
        folder[name] = {
            "path": relative,
            "size": f["size"],
            "url": ARTIFACT_DOWNLOAD + urllib.parse.quote(f["path"]),
            "preview": preview_url(f["path"]) if kind_of(name) else None,
        }

    def nodes(folder: dict, at: str) -> list[dict]:
        out = []
        for name, value in sorted(folder.items(), key=lambda kv: (not kv[0].endswith("/"), kv[0])):
            if name.endswith("/"):
                path = posixpath.join(at, name[:-1])
                out.append({"name": name[:-1], "path": path, "children": nodes(value, path)})
            else:
                out.append({"name": name, "children": None, **value})
        return out

    return nodes(root, "")


def run_events(ctx: ServerContext, run_id: str, model_ids: list[str], limit: int) -> list[dict]:
    """Every event about the run, and about the models it logged, newest first."""
    placeholders = ", ".join("?" for _ in model_ids) or "NULL"
    return _event_views(
        _rows(
            ctx,
            f"""SELECT * FROM events WHERE run_id = ? OR model_id IN ({placeholders})
            ORDER BY ts DESC, seq DESC LIMIT ?""",
            [run_id, *model_ids, limit],
        )
    )


def _event_views(rows: list[dict]) -> list[dict]:
    return [{**r, "verified": r.get("actor_verified", False)} for r in rows]


def model_events(ctx: ServerContext, registered_model_id: str, limit: int) -> list[dict]:
    """Every event about a registered model and its versions, newest first."""
    return _event_views(
        _rows(
            ctx,
            "SELECT * FROM events WHERE registered_model_id = ? ORDER BY ts DESC, seq DESC LIMIT ?",
            [registered_model_id, limit],
        )
    )


# Audit and SQL pages ------------------------------------------------------------------


def audit_events(
    ctx: ServerContext,
    *,
    actor: str,
    type: str,
    experiment_id: str,
    since_ts: int | None,
    until_ts: int | None,
    limit: int,
    offset: int,
    verified_only: bool = False,
) -> list[dict]:
    """The ledger newest first; an empty filter value matches everything."""
    return _event_views(
        _rows(
            ctx,
            """SELECT * FROM events
           WHERE (? = '' OR actor = ?) AND (? = '' OR type = ?) AND (? = '' OR experiment_id = ?)
             AND ts >= coalesce(?, ts) AND ts <= coalesce(?, ts) AND (NOT ? OR actor_verified)
           ORDER BY ts DESC, seq DESC LIMIT ? OFFSET ?""",
            (
                actor,
                actor,
                type,
                type,
                experiment_id,
                experiment_id,
                since_ts,
                until_ts,
                verified_only,
                limit,
                offset,
            ),
        )
    )


def actors(ctx: ServerContext) -> list[str]:
    return [r["actor"] for r in _rows(ctx, "SELECT DISTINCT actor FROM events WHERE actor <> '' ORDER BY 1")]


def table_columns(ctx: ServerContext) -> list[tuple[str, list[tuple[str, str]]]]:
    """The tables SQL can read, with their columns, for the SQL page's side panel."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for r in _rows(
        ctx,
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'main' AND table_name <> 'checkpoints'
           ORDER BY table_name, ordinal_position""",
    ):
        tables.setdefault(r["table_name"], []).append((r["column_name"], r["data_type"]))
    return list(tables.items())
