"""Reads the web page needs beyond the MLflow-shaped Projection queries: one SQL statement each,
against the projection's tables (see the Tables section of README.md for their columns)."""

from __future__ import annotations

import posixpath
import re
import urllib.parse

from trackledger.api.context import ServerContext
from trackledger.api.web.previews import kind_of, preview_url
from trackledger.api.web.templating import format_time

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


# Events with the names of what they concern (as the reader may see them: a name the reader may
# not read stays empty) and the user the run's client claimed (its mlflow.user tag, else user_id).
EVENTS_NAMED = """
    SELECT ev.*, x.name AS experiment_name, r.run_name, m.name AS model_name,
           coalesce(nullif(u.value, ''), nullif(r.user_id, '')) AS run_user
    FROM events ev
    LEFT JOIN experiments x ON x.experiment_id = ev.experiment_id
    LEFT JOIN runs r ON r.run_id = ev.run_id
    LEFT JOIN run_tags u ON u.run_id = ev.run_id AND u.key = 'mlflow.user'
    LEFT JOIN logged_models m ON m.model_id = ev.model_id"""


def run_events(ctx: ServerContext, run_id: str, model_ids: list[str], limit: int) -> list[dict]:
    """Every event about the run, and about the models it logged, newest first."""
    placeholders = ", ".join("?" for _ in model_ids) or "NULL"
    return _event_views(
        _rows(
            ctx,
            f"""{EVENTS_NAMED} WHERE ev.run_id = ? OR ev.model_id IN ({placeholders})
            ORDER BY ev.ts DESC, ev.seq DESC LIMIT ?""",
            [run_id, *model_ids, limit],
        )
    )


# Epoch milliseconds inside an event's summary (a run's end time, a token's expiry).
SUMMARY_TIMES = re.compile(r"\b(end_time=|expires )(-?\d{10,19})\b")


def _event_views(rows: list[dict]) -> list[dict]:
    """Rows of ``EVENTS_NAMED`` as the templates show them: times in the summary as UTC dates, and
    ``claimed`` beside a verified actor: the event's ``claimed_actor`` (an import's source user),
    else the user the run's client named where it differs from the actor."""
    return [
        {
            **r,
            "verified": r.get("actor_verified", False),
            "summary": SUMMARY_TIMES.sub(lambda m: f"{m[1]}{format_time(int(m[2]))} UTC", r["summary"] or ""),
            "claimed": r.get("claimed_actor")
            or (r["run_user"] if r.get("actor_verified") and r["run_user"] != r["actor"] else None),
        }
        for r in rows
    ]


def model_events(ctx: ServerContext, registered_model_id: str, limit: int) -> list[dict]:
    """Every event about a registered model and its versions, newest first."""
    return _event_views(
        _rows(
            ctx,
            f"{EVENTS_NAMED} WHERE ev.registered_model_id = ? ORDER BY ev.ts DESC, ev.seq DESC LIMIT ?",
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
            f"""{EVENTS_NAMED}
           WHERE (? = '' OR ev.actor = ?) AND (? = '' OR ev.type = ?) AND (? = '' OR ev.experiment_id = ?)
             AND ev.ts >= coalesce(?, ev.ts) AND ev.ts <= coalesce(?, ev.ts) AND (NOT ? OR ev.actor_verified)
           ORDER BY ev.ts DESC, ev.seq DESC LIMIT ? OFFSET ?""",
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
