"""Run reads: one run, search (filter, order_by, view type, paging) and metric history."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from projections.filters import (
    InvalidQuery,
    comparison,
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)

# attribute name -> (column, is numeric)
RUN_ATTRIBUTES = {
    "run_id": ("r.run_id", False),
    "run_uuid": ("r.run_id", False),
    "run_name": ("r.run_name", False),
    "status": ("r.status", False),
    "user_id": ("r.user_id", False),
    "artifact_uri": ("r.artifact_uri", False),
    "lifecycle_stage": ("r.lifecycle_stage", False),
    "experiment_id": ("r.experiment_id", False),
    "start_time": ("r.start_time", True),
    "created": ("r.start_time", True),
    "end_time": ("r.end_time", True),
}
# entity -> (table, value column, numeric)
RUN_CHILDREN = {
    "metric": ("latest_metrics", True),
    "param": ("params", False),
    "tag": ("run_tags", False),
}
DATASET_FIELDS = ("name", "digest", "context")

VIEW_TYPES = {
    "ACTIVE_ONLY": "r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active'",
    "DELETED_ONLY": "(r.lifecycle_stage = 'deleted' OR e.lifecycle_stage = 'deleted')",
    "ALL": "true",
}

# Children are aggregated per run for the page's runs only (semi-joins), then joined once:
# much faster in DuckDB than one correlated subquery per child list.
RUN_DETAILS = """
WITH page AS (SELECT unnest(?::VARCHAR[]) AS run_id, unnest(range(len(?::VARCHAR[]))) AS i),
metric_lists AS (
  SELECT run_id, list({'key': key, 'value': value, 'timestamp': timestamp, 'step': step} ORDER BY key) AS l
  FROM latest_metrics WHERE run_id IN (SELECT run_id FROM page) GROUP BY run_id),
param_lists AS (
  SELECT run_id, list({'key': key, 'value': value} ORDER BY key) AS l
  FROM params WHERE run_id IN (SELECT run_id FROM page) GROUP BY run_id),
tag_lists AS (
  SELECT run_id, list({'key': key, 'value': value} ORDER BY key) AS l
  FROM run_tags WHERE run_id IN (SELECT run_id FROM page) GROUP BY run_id),
dataset_lists AS (
  SELECT run_id, list({'tags': tags, 'dataset': {'name': name, 'digest': digest, 'source_type': source_type,
         'source': source, 'schema': schema, 'profile': profile}} ORDER BY seq, name) AS l
  FROM dataset_inputs WHERE run_id IN (SELECT run_id FROM page) GROUP BY run_id),
input_lists AS (
  SELECT run_id, list({'model_id': model_id} ORDER BY seq, model_id) AS l
  FROM model_inputs WHERE run_id IN (SELECT run_id FROM page) GROUP BY run_id),
output_lists AS (
  SELECT run_id, list({'model_id': model_id, 'step': step} ORDER BY seq, model_id) AS l
  FROM model_outputs WHERE run_id IN (SELECT run_id FROM page) GROUP BY run_id)
SELECT r.run_id, r.experiment_id, r.run_name, r.user_id, r.status, r.start_time, r.end_time,
       r.artifact_uri, r.lifecycle_stage, m.l, p.l, t.l, d.l, mi.l, mo.l
FROM page JOIN runs r USING (run_id)
  LEFT JOIN metric_lists m USING (run_id) LEFT JOIN param_lists p USING (run_id)
  LEFT JOIN tag_lists t USING (run_id) LEFT JOIN dataset_lists d USING (run_id)
  LEFT JOIN input_lists mi USING (run_id) LEFT JOIN output_lists mo USING (run_id)
ORDER BY page.i
"""


def _without_nulls(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def run_info(row) -> dict:
    run_id, experiment_id, name, user_id, status, start, end, artifact_uri, stage = row[:9]
    info = {
        "run_uuid": run_id,
        "experiment_id": experiment_id,
        "run_name": name,
        "user_id": user_id,
        "status": status,
        "start_time": start,
        "end_time": end,
        "artifact_uri": artifact_uri,
        "lifecycle_stage": stage,
        "run_id": run_id,
    }
    return _without_nulls(info)


def _run_dict(row) -> dict:
    metrics, params, tags, datasets, model_inputs, model_outputs = row[9:]
    data = {k: v for k, v in (("metrics", metrics), ("params", params), ("tags", tags)) if v}
    inputs = {}
    if datasets:
        inputs["dataset_inputs"] = [
            {**({"tags": d["tags"]} if d["tags"] else {}), "dataset": _without_nulls(d["dataset"])}
            for d in datasets
        ]
    if model_inputs:
        inputs["model_inputs"] = model_inputs
    outputs = {"model_outputs": model_outputs} if model_outputs else {}
    return {"info": run_info(row), "data": data, "inputs": inputs, "outputs": outputs}


def runs_by_id(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[dict]:
    """Full MLflow run dicts, in the order of ``run_ids`` (unknown ids are skipped)."""
    if not run_ids:
        return []
    return [_run_dict(row) for row in con.execute(RUN_DETAILS, [run_ids, run_ids]).fetchall()]


def _clause_sql(clause, params: list) -> str:
    if clause.entity == "attribute":
        if clause.key not in RUN_ATTRIBUTES:
            raise InvalidQuery(
                f"Invalid attribute key {clause.key!r}; expected one of {sorted(RUN_ATTRIBUTES)}"
            )
        column, numeric = RUN_ATTRIBUTES[clause.key]
        sql, values = comparison(column, clause, numeric)
        params.extend(values)
        return sql
    if clause.entity == "dataset":
        if clause.key not in DATASET_FIELDS:
            raise InvalidQuery(f"Invalid dataset key {clause.key!r}; expected one of {list(DATASET_FIELDS)}")
        sql, values = comparison(f"x.{clause.key}", clause, False)
        params.extend(values)
        return f"EXISTS (SELECT 1 FROM dataset_inputs x WHERE x.run_id = r.run_id AND {sql})"
    table, numeric = RUN_CHILDREN[clause.entity]
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        params.append(clause.key)
        negate = "NOT " if clause.comparator == "IS NULL" else ""
        return f"{negate}EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = ?)"
    sql, values = comparison("x.value", clause, numeric)
    params.append(clause.key)
    params.extend(values)
    return f"EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = ? AND {sql})"


def run_filter_sql(filter: str | None) -> tuple[str, list]:
    """MLflow's run search filter compiled to one SQL condition and its parameters.

    The condition reads the table ``runs`` under the alias ``r`` (``... FROM runs r WHERE {sql}``)
    and may use correlated subqueries on the child tables; every key and value is a parameter.
    An empty filter gives ``("true", [])``. Raises ``InvalidQuery`` naming the problem.
    """
    params: list = []
    clauses = [_clause_sql(clause, params) for clause in parse_filter(filter)]
    return " AND ".join(clauses) or "true", params


def _order_sql(n: int, order_key, params: list) -> tuple[str, str]:
    """(join clause, sort expression) for one order_by key; children join on their key."""
    if order_key.entity == "attribute":
        if order_key.key not in RUN_ATTRIBUTES:
            raise InvalidQuery(
                f"Invalid order_by attribute {order_key.key!r}; expected one of {sorted(RUN_ATTRIBUTES)}"
            )
        return "", RUN_ATTRIBUTES[order_key.key][0]
    if order_key.entity == "dataset":
        raise InvalidQuery("order_by on datasets is not supported")
    table, _ = RUN_CHILDREN[order_key.entity]
    params.append(order_key.key)
    return f" LEFT JOIN {table} o{n} ON o{n}.run_id = r.run_id AND o{n}.key = ?", f"o{n}.value"


def search_runs(
    con: duckdb.DuckDBPyConnection,
    experiment_ids,
    filter: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    max_results: int = 1000,
    order_by=(),
    page_token: str | None = None,
) -> tuple[list[dict], str | None]:
    if run_view_type not in VIEW_TYPES:
        raise InvalidQuery(f"Invalid run_view_type {run_view_type!r}; expected one of {list(VIEW_TYPES)}")
    if max_results is None or max_results < 1:
        raise InvalidQuery(f"Invalid max_results {max_results!r}: must be a positive integer")
    experiment_ids = [str(e) for e in experiment_ids or ()]
    offset = decode_page_token(page_token)
    join_params: list = []
    joins, order = [], []
    for n, key in enumerate(parse_order_by(order_by)):
        join, expr = _order_sql(n, key, join_params)
        joins.append(join)
        # MLflow puts runs lacking the key last, in either direction.
        order.append(f"{expr} IS NULL, {expr} {'DESC' if key.descending else 'ASC'}, ")
    condition, filter_params = run_filter_sql(filter)
    where_params: list = [experiment_ids, *filter_params]
    where = ["r.experiment_id = ANY(?::VARCHAR[])", VIEW_TYPES[run_view_type], condition]
    sql = f"""SELECT r.run_id FROM runs r JOIN experiments e USING (experiment_id){"".join(joins)}
              WHERE {" AND ".join(where)}
              ORDER BY {"".join(order)}r.start_time DESC, r.run_id LIMIT ? OFFSET ?"""
    rows = con.execute(sql, [*join_params, *where_params, max_results + 1, offset]).fetchall()
    token = encode_page_token(offset + max_results) if len(rows) > max_results else None
    return runs_by_id(con, [row[0] for row in rows[:max_results]]), token


HISTORY = """SELECT key, value, timestamp, step FROM metrics WHERE run_id = ? AND key = ?
             GROUP BY ALL ORDER BY step, timestamp, value LIMIT ? OFFSET ?"""


def metric_history(con, run_id: str, key: str, max_results: int | None = None, page_token=None):
    """One run's history of one metric; exact duplicate points count once (as in MLflow)."""
    offset = decode_page_token(page_token)
    limit = max_results + 1 if max_results else None
    rows = con.execute(HISTORY, [run_id, key, limit, offset]).fetchall()
    token = None
    if max_results and len(rows) > max_results:
        rows, token = rows[:max_results], encode_page_token(offset + max_results)
    return [{"key": k, "value": v, "timestamp": t, "step": s} for k, v, t, s in rows], token


def metric_history_arrow(con, run_ids, keys=None) -> pa.Table:
    """Histories of many runs and keys as one Arrow table (run_id, key, step, timestamp, value)."""
    params = [list(run_ids)]
    key_filter = ""
    if keys is not None:
        key_filter, params = " AND key = ANY(?::VARCHAR[])", [*params, list(keys)]
    sql = f"""SELECT run_id, key, step, timestamp, value FROM metrics
              WHERE run_id = ANY(?::VARCHAR[]){key_filter}
              GROUP BY ALL ORDER BY run_id, key, step, timestamp, value"""
    return con.sql(sql, params=params).to_arrow_table()
