"""The runs table's reads and a run's children: the runs search's query (its filter, view type and
the reader's permission filter) with the page's columns joined, as a tree of parent and child runs."""

from __future__ import annotations

from collections import Counter

from trackledger.api.context import ServerContext
from trackledger.api.web.runs_table import RunsTable
from trackledger.api.web.views import finite
from trackledger.projections import runs
from trackledger.projections.filters import OrderKey
from trackledger.projections.search import sort_term

PARENT_TAG = "mlflow.parentRunId"  # set by mlflow.start_run(nested=True)
MAX_CHILDREN = 200  # children listed on a run's page
KEY_METRICS = 6  # metric columns of the children's list


def run_keys(ctx: ServerContext, experiment_id: str) -> tuple[list[str], list[str], list[str]]:
    """Every param, metric and tag key of the experiment's runs: the columns one can choose."""
    rows = ctx.projection.read_records(
        """SELECT 'p' AS kind, key FROM (SELECT DISTINCT p.key FROM params p JOIN runs r USING (run_id)
                                          WHERE r.experiment_id = ?)
           UNION ALL
           SELECT 'm', key FROM (SELECT DISTINCT m.key FROM latest_metrics m JOIN runs r USING (run_id)
                                 WHERE r.experiment_id = ?)
           UNION ALL
           SELECT 't', key FROM (SELECT DISTINCT t.key FROM run_tags t JOIN runs r USING (run_id)
                                 WHERE r.experiment_id = ?)
           ORDER BY 1, 2""",
        [experiment_id] * 3,
    )
    return tuple([r["key"] for r in rows if r["kind"] == kind] for kind in "pmt")


# The fixed columns' sort: a run attribute, or an expression sorted as attributes are.
FIXED_SORT = {"status": "status", "name": "run_name", "user": "user_id", "start": "start_time"}
# two int64 times can differ by more than int64 holds
SORT_EXPRESSIONS = {"duration": "r.end_time::HUGEINT - r.start_time"}
SORT_ENTITIES = {"p": "param", "m": "metric", "t": "tag"}


def runs_page(ctx: ServerContext, experiment_id: str, table: RunsTable) -> None:
    """Fills ``table.rows`` and its totals from the runs search's query, with a join per chosen
    column. The top-level runs are sorted and paged; each one's children follow it, sorted the
    same way (see ``search.Query.forest_window``). Raises ``projections.InvalidQuery`` for a
    filter that does not parse."""
    q = table.query
    query = runs.run_query([experiment_id], q.view_type).filter(q.filter)
    query.join(
        "LEFT JOIN run_tags parent_tag ON parent_tag.run_id = r.run_id AND parent_tag.key = ?", PARENT_TAG
    )
    query.join("LEFT JOIN runs parent ON parent.run_id = parent_tag.value")  # none when unreadable
    columns = ["r.run_id", "r.run_name", "r.status", "r.user_id", "r.start_time", "r.end_time"]
    columns += ["parent.run_id AS parent_id", "parent.run_name AS parent_name"]
    for prefix, keys, join in (
        ("p", table.params, "LEFT JOIN params {a} ON {a}.run_id = r.run_id AND {a}.key = ?"),
        ("m", table.metrics, "LEFT JOIN latest_metrics {a} ON {a}.run_id = r.run_id AND {a}.key = ?"),
        ("t", table.tags, "LEFT JOIN run_tags {a} ON {a}.run_id = r.run_id AND {a}.key = ?"),
    ):
        for i, key in enumerate(keys):
            query.join(join.format(a=f"{prefix}{i}"), key)
            columns.append(f"{prefix}{i}.value AS {prefix}{i}")

    descending = q.direction == "desc"
    kind, _, key = q.sort.partition(":")
    if kind in SORT_ENTITIES:
        query.order_keys([OrderKey(SORT_ENTITIES[kind], key, descending)])
    elif q.sort in FIXED_SORT:
        query.order_keys([OrderKey("attribute", FIXED_SORT[q.sort], descending)])
    else:
        query.then_by(sort_term(SORT_EXPRESSIONS[q.sort], descending))
    query.then_by(runs.DEFAULT_ORDER)

    rows, table.total, table.total_runs = ctx.projection.query(
        query.forest_window, ", ".join(columns), "r.run_id", "parent_tag.value", q.offset, q.per_page
    )
    children = Counter(r["tree_parent"] for r in rows if r["tree_depth"] > 0)
    lists = _run_lists(ctx, [r["run_id"] for r in rows], table.optional)
    table.rows = [
        {
            "run_id": r["run_id"],
            "name": r["run_name"],
            "status": r["status"],
            "user": r["user_id"],
            "start_time": r["start_time"],
            "duration": r["end_time"] - r["start_time"] if r["end_time"] and r["start_time"] else None,
            "depth": r["tree_depth"],
            "parent_id": r["tree_parent"] if r["tree_depth"] > 0 else None,
            # a top-level run whose parent exists but was filtered out: named, to be found
            "outside_parent": (r["parent_id"], r["parent_name"])
            if r["tree_depth"] == 0 and r["parent_id"]
            else None,
            "children": children[r["run_id"]],
            "params": [r[f"p{i}"] for i in range(len(table.params))],
            "metrics": [finite(r[f"m{i}"]) for i in range(len(table.metrics))],
            "tags": [r[f"t{i}"] for i in range(len(table.tags))],
            **{name: found.get(r["run_id"], []) for name, found in lists.items()},
        }
        for r in rows
    ]


# The optional columns: for each run of the page, its dataset inputs or its logged models.
LIST_COLUMNS = {
    "datasets": """SELECT run_id, list(struct_pack(name, digest, context) ORDER BY name, context) AS items
                   FROM (SELECT DISTINCT run_id, name, digest, context FROM dataset_inputs
                         WHERE list_contains(?::VARCHAR[], run_id))
                   GROUP BY run_id""",
    "models": """SELECT o.run_id, list(DISTINCT struct_pack(m.name, m.model_id)) AS items
                 FROM model_outputs o JOIN logged_models m USING (model_id)
                 WHERE list_contains(?::VARCHAR[], o.run_id) GROUP BY o.run_id""",
}


def _run_lists(ctx: ServerContext, run_ids: list[str], chosen: list[str]) -> dict[str, dict[str, list]]:
    if not run_ids:
        return {name: {} for name in chosen}
    return {
        name: {r["run_id"]: r["items"] for r in ctx.projection.read_records(LIST_COLUMNS[name], [run_ids])}
        for name in chosen
    }


def run_children(ctx: ServerContext, run_id: str) -> tuple[list[dict], list[str], int]:
    """The active runs whose parent is ``run_id`` (as far as the reader may see them), oldest
    first, with their latest metrics; the metric keys to show; how many children there are."""
    query = runs.RUNS.query().restrict("r.lifecycle_stage = 'active'")
    query.restrict(
        "EXISTS (SELECT 1 FROM run_tags x WHERE x.run_id = r.run_id AND x.key = ? AND x.value = ?)",
        PARENT_TAG,
        run_id,
    )
    query.then_by("r.start_time, r.run_name, r.run_id")
    columns = "r.run_id, r.run_name, r.status, r.start_time, r.end_time, r.experiment_id"
    rows, total = ctx.projection.query(query.window, columns, 0, MAX_CHILDREN)
    if not rows:
        return [], [], total
    points = ctx.projection.read_records(
        "SELECT run_id, key, value FROM latest_metrics WHERE list_contains(?::VARCHAR[], run_id)",
        [[r["run_id"] for r in rows]],
    )
    keys = sorted({p["key"] for p in points})[:KEY_METRICS]
    values = {(p["run_id"], p["key"]): finite(p["value"]) for p in points}
    children = [
        {
            "run_id": r["run_id"],
            "name": r["run_name"],
            "status": r["status"],
            "start_time": r["start_time"],
            "duration": r["end_time"] - r["start_time"] if r["end_time"] and r["start_time"] else None,
            "metrics": [values.get((r["run_id"], key)) for key in keys],
        }
        for r in rows
    ]
    return children, keys, total


def parent_of(ctx: ServerContext, run_id: str) -> dict | None:
    """The run's parent (id and name) when it has one the reader may see."""
    found = ctx.projection.read_records(
        """SELECT p.run_id, p.run_name FROM run_tags t JOIN runs p ON p.run_id = t.value
           WHERE t.run_id = ? AND t.key = ?""",
        [run_id, PARENT_TAG],
    )
    return found[0] if found else None
