"""Run reads: one run, search (filter, order_by, view type, paging) and metric history."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

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

# A page of runs is read as flat rows of every child table in one query restricted to the page's
# runs, fetched as Arrow and assembled in Python: several times cheaper than aggregating lists per
# run in SQL, and than fetching Python tuples (DuckDB's fetchall costs ~2 us a row).
RUN_ROWS = """SELECT run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri,
                     lifecycle_stage FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))"""
_DATASET = """STRUCT(name VARCHAR, digest VARCHAR, source_type VARCHAR, source VARCHAR, schema VARCHAR,
                     profile VARCHAR)"""
# kind: 0 metric, 1 param, 2 tag, 3 dataset, 4 model input, 5 model output
CHILD_ROWS = f"""
WITH page AS MATERIALIZED (SELECT unnest(?::VARCHAR[]) AS run_id)
SELECT * FROM (
  SELECT 0 AS kind, run_id, key, NULL::VARCHAR AS text, value AS number, timestamp, step, NULL::BIGINT AS seq,
         NULL::{_DATASET} AS dataset, NULL::STRUCT(key VARCHAR, value VARCHAR)[] AS tags
  FROM latest_metrics SEMI JOIN page USING (run_id)
  UNION ALL SELECT 1, run_id, key, value, NULL, NULL, NULL, NULL, NULL, NULL
  FROM params SEMI JOIN page USING (run_id)
  UNION ALL SELECT 2, run_id, key, value, NULL, NULL, NULL, NULL, NULL, NULL
  FROM run_tags SEMI JOIN page USING (run_id)
  UNION ALL SELECT 3, run_id, name, NULL, NULL, NULL, NULL, seq,
         {{'name': name, 'digest': digest, 'source_type': source_type, 'source': source, 'schema': schema,
          'profile': profile}}, tags
  FROM dataset_inputs SEMI JOIN page USING (run_id)
  UNION ALL SELECT 4, run_id, model_id, NULL, NULL, NULL, NULL, seq, NULL, NULL
  FROM model_inputs SEMI JOIN page USING (run_id)
  UNION ALL SELECT 5, run_id, model_id, NULL, NULL, NULL, step, seq, NULL, NULL
  FROM model_outputs SEMI JOIN page USING (run_id))
ORDER BY kind, seq, key"""


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


def _child_dicts(con, run_ids: list[str]) -> dict[str, tuple[list, ...]]:
    """run_id -> (metrics, params, tags, dataset_inputs, model_inputs, model_outputs) lists."""
    table = con.sql(CHILD_ROWS, params=[run_ids]).to_arrow_table()
    columns = [
        table.column(name).to_pylist()
        for name in ("kind", "run_id", "key", "text", "number", "timestamp", "step")
    ]
    out: dict[str, tuple[list, ...]] = {}
    datasets = tags = None
    for i, (kind, run_id, key, text, number, timestamp, step) in enumerate(zip(*columns, strict=True)):
        lists = out.get(run_id)
        if lists is None:
            lists = out[run_id] = ([], [], [], [], [], [])
        if kind == 0:
            lists[0].append({"key": key, "value": number, "timestamp": timestamp, "step": step})
        elif kind < 3:
            lists[kind].append({"key": key, "value": text})
        elif kind == 3:
            if datasets is None:
                datasets, tags = table.column("dataset").to_pylist(), table.column("tags").to_pylist()
            dataset = {k: v for k, v in datasets[i].items() if v is not None}
            lists[3].append({"tags": tags[i], "dataset": dataset} if tags[i] else {"dataset": dataset})
        elif kind == 4:
            lists[4].append({"model_id": key})
        else:
            lists[5].append({"model_id": key, "step": step})
    return out


NO_CHILDREN = ([], [], [], [], [], [])


def runs_by_id(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[dict]:
    """Full MLflow run dicts, in the order of ``run_ids`` (unknown ids are skipped)."""
    if not run_ids:
        return []
    run_ids = list(run_ids)
    found = {row[0]: row for row in con.execute(RUN_ROWS, [run_ids]).fetchall()}
    if not found:
        return []
    children = _child_dicts(con, run_ids)
    out = []
    for run_id in run_ids:
        row = found.get(run_id)
        if row is None:
            continue
        metrics, params, tags, datasets, model_inputs, model_outputs = children.get(run_id, NO_CHILDREN)
        data = {k: v for k, v in (("metrics", metrics), ("params", params), ("tags", tags)) if v}
        inputs = {k: v for k, v in (("dataset_inputs", datasets), ("model_inputs", model_inputs)) if v}
        outputs = {"model_outputs": model_outputs} if model_outputs else {}
        out.append({"info": run_info(row), "data": data, "inputs": inputs, "outputs": outputs})
    return out


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
    """Histories of many runs and keys as one Arrow table (run_id, key, step, timestamp, value).

    Exact duplicate points count once: the rows come sorted, so duplicates are neighbours and
    are dropped in Arrow, which costs far less than DuckDB grouping every point first.
    """
    params = [list(run_ids)]
    key_filter = ""
    if keys is not None:
        key_filter, params = " AND key = ANY(?::VARCHAR[])", [*params, list(keys)]
    sql = f"""SELECT run_id, key, step, timestamp, value FROM metrics
              WHERE run_id = ANY(?::VARCHAR[]){key_filter}
              ORDER BY run_id, key, step, timestamp, value"""
    return drop_repeated_rows(con.sql(sql, params=params).to_arrow_table())


def drop_repeated_rows(table: pa.Table) -> pa.Table:
    """``table`` without rows equal to the row before them (NaN equals NaN, null equals null)."""
    n = table.num_rows
    if n < 2:
        return table
    # Cheap numeric columns first; strings only where every other column repeats.
    order = sorted(table.column_names, key=lambda name: pa.types.is_string(table.schema.field(name).type))
    same = None
    for name in order:
        column = table.column(name)
        if same is not None and pa.types.is_string(column.type):
            candidates = pc.indices_nonzero(same)
            if len(candidates) == 0:
                return table
            previous, current = column.take(candidates), column.take(pc.add(candidates, 1))
            same = pc.replace_with_mask(same, same, _array(_equal(previous, current)))
            continue
        repeated = _array(_equal(column.slice(0, n - 1), column.slice(1)))
        same = repeated if same is None else pc.and_(same, repeated)
    if not pc.any(same).as_py():
        return table
    return table.filter(pa.concat_arrays([pa.array([True]), pc.invert(same)]))


def _array(values) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _equal(a, b):
    equal = pc.equal(a, b)
    if pa.types.is_floating(a.type):
        equal = pc.or_kleene(equal, pc.and_(pc.is_nan(a), pc.is_nan(b)))
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return pc.fill_null(pc.or_kleene(equal, both_null), False)
