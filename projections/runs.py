"""Run reads: one run, search (filter, order_by, view type, paging) and metric history."""

from __future__ import annotations

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from trackledger.projections.filters import (
    InvalidQuery,
    comparison,
    decode_page_token,
    encode_page_token,
    page_limit,
    parse_filter,
    parse_order_by,
)

# attribute name -> (column, is numeric); MLflow's spellings with a space ("Run name") and
# "created" / "Created" are its aliases of run_name and start_time.
RUN_ATTRIBUTES = {
    "run_id": ("r.run_id", False),
    "run_uuid": ("r.run_id", False),
    "run_name": ("r.run_name", False),
    "run name": ("r.run_name", False),
    "Run name": ("r.run_name", False),
    "Run Name": ("r.run_name", False),
    "status": ("r.status", False),
    "user_id": ("r.user_id", False),
    "artifact_uri": ("r.artifact_uri", False),
    "lifecycle_stage": ("r.lifecycle_stage", False),
    "experiment_id": ("r.experiment_id", False),
    "start_time": ("r.start_time", True),
    "created": ("r.start_time", True),
    "Created": ("r.start_time", True),
    "end_time": ("r.end_time", True),
}
# entity -> (table, value column, numeric)
RUN_CHILDREN = {
    "metric": ("latest_metrics", True),
    "param": ("params", False),
    "tag": ("run_tags", False),
}
DATASET_FIELDS = ("name", "digest", "context")

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


def runs_by_id(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[dict]:
    """Full MLflow run dicts, in the order of ``run_ids`` (unknown ids are skipped)."""
    return decode_runs(runs_json(con, run_ids))


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
    if clause.entity == "metric" and clause.comparator != "!=":
        # DuckDB orders NaN above every number; in MLflow a NaN metric only ever matches !=.
        sql = f"{sql} AND NOT isnan(x.value)"
    params.append(clause.key)
    params.extend(values)
    return f"EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = ? AND {sql})"


def run_filter_sql(filter: str | None) -> tuple[str, list]:
    """MLflow's run search filter compiled to one SQL condition and its parameters.

    The condition reads the table ``runs`` under the alias ``r`` (``... FROM runs r WHERE {sql}``)
    and may use correlated subqueries on the child tables; every key and value is a parameter.
    A key without a prefix is an attribute, as in MLflow. An empty filter gives ``("true", [])``.
    Raises ``InvalidQuery`` naming the problem.
    """
    params: list = []
    clauses = [_clause_sql(clause, params) for clause in parse_filter(filter, "attribute")]
    return " AND ".join(clauses) or "true", params


def _order_sql(n: int, order_key, params: list) -> tuple[str, str]:
    """(join clause, ORDER BY terms) for one order_by key; children join on their key.

    As in MLflow, runs lacking the key come last in either direction, and a NaN metric comes
    after every number but before the runs lacking it."""
    direction = "DESC" if order_key.descending else "ASC"
    if order_key.entity == "attribute":
        if order_key.key not in RUN_ATTRIBUTES:
            raise InvalidQuery(
                f"Invalid order_by attribute {order_key.key!r}; expected one of {sorted(RUN_ATTRIBUTES)}"
            )
        expr = RUN_ATTRIBUTES[order_key.key][0]
        return "", f"{expr} IS NULL, {expr} {direction}"
    if order_key.entity == "dataset":
        raise InvalidQuery("order_by on datasets is not supported")
    table, _ = RUN_CHILDREN[order_key.entity]
    params.append(order_key.key)
    expr = f"o{n}.value"
    nan_last = f"isnan({expr}), " if order_key.entity == "metric" else ""
    join = f" LEFT JOIN {table} o{n} ON o{n}.run_id = r.run_id AND o{n}.key = ?"
    return join, f"{expr} IS NULL, {nan_last}{expr} {direction}"


# Runs of a deleted experiment are deleted with it (apply cascades its lifecycle to them).
RUN_VIEWS = {
    "ACTIVE_ONLY": " AND r.lifecycle_stage = 'active'",
    "DELETED_ONLY": " AND r.lifecycle_stage = 'deleted'",
    "ALL": "",
}


def search_runs_json(
    con: duckdb.DuckDBPyConnection,
    experiment_ids,
    filter: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    max_results: int = 1000,
    order_by=(),
    page_token: str | None = None,
) -> tuple[bytes, str | None]:
    """A page of runs as ``runs_json`` gives them, and the token of the next page (None if last)."""
    if run_view_type not in RUN_VIEWS:
        raise InvalidQuery(f"Invalid run_view_type {run_view_type!r}; expected one of {list(RUN_VIEWS)}")
    if max_results is None or max_results < 1:
        raise InvalidQuery(f"Invalid max_results {max_results!r}: must be a positive integer")
    experiment_ids = [str(e) for e in experiment_ids or ()]
    offset = decode_page_token(page_token)
    join_params: list = []
    joins, order = [], []
    for n, key in enumerate(parse_order_by(order_by, "attribute")):
        join, terms = _order_sql(n, key, join_params)
        joins.append(join)
        order.append(f"{terms}, ")
    condition, filter_params = run_filter_sql(filter)
    view = f"list_contains(?::VARCHAR[], r.experiment_id){RUN_VIEWS[run_view_type]}"
    view_params = [experiment_ids]
    sql = f"""SELECT r.run_id FROM runs r{"".join(joins)}
              WHERE {view} AND {condition}
              ORDER BY {"".join(order)}r.start_time DESC, r.run_id LIMIT ? OFFSET ?"""
    params = [*join_params, *view_params, *filter_params, page_limit(max_results), offset]
    rows = con.execute(sql, params).fetchall()
    token = encode_page_token(offset + max_results) if len(rows) > max_results else None
    return runs_json(con, [row[0] for row in rows[:max_results]]), token


def search_runs(con: duckdb.DuckDBPyConnection, *args, **kwargs) -> tuple[list[dict], str | None]:
    """``search_runs_json`` with the runs as dicts."""
    text, token = search_runs_json(con, *args, **kwargs)
    return decode_runs(text), token


# MLflow's order (its pages depend on it): timestamp, step, then value with NaN counted as 0.
HISTORY = """SELECT value, timestamp, step
             FROM (SELECT DISTINCT value, timestamp, step FROM metrics WHERE run_id = ? AND key = ?)
             ORDER BY timestamp, step, CASE WHEN isnan(value) THEN 0 ELSE value END, isnan(value)
             LIMIT ? OFFSET ?"""


def _history_page(con, run_id: str, key: str, max_results, page_token) -> tuple[pa.Table, str | None]:
    """One run's history of one metric in MLflow's order, a page of it as Arrow (value, timestamp,
    step), and the next page's token (None on the last page); exact duplicate points count once
    (as in MLflow)."""
    offset = decode_page_token(page_token)
    limit = page_limit(max_results) if max_results else None
    page = con.sql(HISTORY, params=[run_id, key, limit, offset]).to_arrow_table()
    if max_results and page.num_rows > max_results:
        return page.slice(0, max_results), encode_page_token(offset + max_results)
    return page, None


def metric_history(con, run_id: str, key: str, max_results: int | None = None, page_token=None):
    """A page of one run's history of one metric as MLflow metric dicts, and the next page's token."""
    page, token = _history_page(con, run_id, key, max_results, page_token)
    columns = [page.column(name).to_pylist() for name in ("value", "timestamp", "step")]
    return [
        {"key": key, "value": v, "timestamp": t, "step": s} for v, t, s in zip(*columns, strict=True)
    ], token


def metric_history_json(
    con, run_id: str, key: str, max_results: int | None = None, page_token=None
) -> tuple[bytes, str | None]:
    """``metric_history`` as the JSON array of MLflow metric objects the REST response carries
    (non-finite values as ``runs_json`` writes them).

    Written by Arrow's vectorised kernels: a fifth of the cost of DuckDB's string functions, and of
    Python dicts encoded by msgspec, for a page of 25,000 points.
    """
    page, token = _history_page(con, run_id, key, max_results, page_token)
    if page.num_rows == 0:
        return b"[]", token
    points = pc.binary_join_element_wise(
        _text('{"key":' + msgspec.json.encode(key).decode() + ',"value":'),
        _number_text(page.column("value").combine_chunks()),
        _text(',"timestamp":'),
        pc.cast(page.column("timestamp"), pa.large_string()),
        _text(',"step":'),
        pc.cast(page.column("step"), pa.large_string()),
        _text("},"),
        _text(""),
    ).combine_chunks()
    # The points end to end are the array's data buffer; the last one's comma gives way to "]".
    _validity, offsets, data = points.buffers()
    offsets = pa.Array.from_buffers(pa.int64(), len(points) + 1, [None, offsets], offset=points.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return b"[" + memoryview(data)[start : end - 1].tobytes() + b"]", token


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _number_text(values: pa.Array) -> pa.Array:
    """The JSON text of each double; Arrow writes "nan" and "inf", which JSON does not have."""
    text = pc.cast(values, pa.large_string())
    if pc.all(pc.is_finite(values)).as_py():
        return text
    text = pc.if_else(pc.is_nan(values), _text('"NaN"'), text)
    text = pc.if_else(pc.and_(pc.is_inf(values), pc.greater(values, 0)), _text('"Infinity"'), text)
    return pc.if_else(pc.and_(pc.is_inf(values), pc.less(values, 0)), _text('"-Infinity"'), text)


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
