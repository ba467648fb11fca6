"""Reads of experiments, artifacts and the audit log, and the query helpers the other reads share
(logged models: ``logged_models``; the registry: ``registry``)."""

from __future__ import annotations

import duckdb
from trackledger.projections.filters import (
    InvalidQuery,
    comparison,
    decode_page_token,
    encode_page_token,
    page_limit,
    parse_filter,
    parse_order_by,
)

EXPERIMENT_ATTRIBUTES = {
    "experiment_id": ("e.experiment_id", False),
    "name": ("e.name", False),
    "artifact_location": ("e.artifact_location", False),
    "lifecycle_stage": ("e.lifecycle_stage", False),
    "creation_time": ("e.creation_time", True),
    "last_update_time": ("e.last_update_time", True),
}
# Experiment ids are numbers in text: they sort as numbers, as MLflow's integer column does.
EXPERIMENT_ID_ORDER = "TRY_CAST(e.experiment_id AS BIGINT)"
EXPERIMENT_VIEWS = {
    "ACTIVE_ONLY": "e.lifecycle_stage = 'active'",
    "DELETED_ONLY": "e.lifecycle_stage = 'deleted'",
    "ALL": "true",
}
EXPERIMENT_SELECT = """
SELECT e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.last_update_time, e.creation_time,
  (SELECT list({'key': key, 'value': value} ORDER BY key) FROM experiment_tags t
   WHERE t.experiment_id = e.experiment_id) AS tags
FROM experiments e"""


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: list):
    """The first row or None, with the result read to its end: DuckDB 2 refuses further ``sql()``
    on a connection whose last ``execute()`` result is unfinished (as ``fetchone()`` leaves it)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _experiment_dict(row) -> dict:
    keys = (
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
        "last_update_time",
        "creation_time",
    )
    experiment = dict(zip(keys, row[:6], strict=True))
    if row[6]:
        experiment["tags"] = row[6]
    return experiment


def experiment(con: duckdb.DuckDBPyConnection, *, experiment_id=None, name=None) -> dict | None:
    column, value = ("e.experiment_id", str(experiment_id)) if name is None else ("e.name", name)
    row = one_row(con, f"{EXPERIMENT_SELECT} WHERE {column} = ?", [value])
    return _experiment_dict(row) if row else None


def where_clauses(clauses, attributes: dict, children: dict, id_column: str, params: list) -> list[str]:
    """SQL conditions for parsed filter clauses on ``attributes`` (name -> (column, numeric)) and on
    child key/value tables (entity -> (table, numeric)) joined on ``id_column``; values to ``params``."""
    where = []
    for clause in clauses:
        if clause.entity == "attribute":
            if clause.key not in attributes:
                raise InvalidQuery(
                    f"Invalid attribute key {clause.key!r}; expected one of {sorted(attributes)}"
                )
            column, numeric = attributes[clause.key]
            sql, values = comparison(column, clause, numeric)
            where.append(sql)
            params.extend(values)
            continue
        if clause.entity not in children:
            raise InvalidQuery(f"Invalid filter entity {clause.entity!r} here")
        table, numeric = children[clause.entity]
        parent = id_column.split(".")[1]
        if clause.comparator in ("IS NULL", "IS NOT NULL"):
            negate = "NOT " if clause.comparator == "IS NULL" else ""
            where.append(
                f"{negate}EXISTS (SELECT 1 FROM {table} x WHERE x.{parent} = {id_column} AND x.key = ?)"
            )
            params.append(clause.key)
            continue
        sql, values = comparison("x.value", clause, numeric)
        where.append(
            f"EXISTS (SELECT 1 FROM {table} x WHERE x.{parent} = {id_column} AND x.key = ? AND {sql})"
        )
        params.extend([clause.key, *values])
    return where


def _order(
    order_by,
    attributes: dict,
    children: dict,
    id_column: str,
    default: str,
    params: list,
    sort_columns: dict[str, str] | None = None,
) -> str:
    """ORDER BY terms for ``order_by`` then ``default``; ``sort_columns`` overrides the sort
    expression of an attribute (e.g. text ids that sort as numbers)."""
    terms = []
    parent = id_column.split(".")[1]
    for key in parse_order_by(order_by, default_entity="attribute"):
        if key.entity == "attribute":
            if key.key not in attributes:
                raise InvalidQuery(
                    f"Invalid order_by attribute {key.key!r}; expected one of {sorted(attributes)}"
                )
            expr = (sort_columns or {}).get(key.key) or attributes[key.key][0]
        elif key.entity in children:
            table = children[key.entity][0]
            expr = f"(SELECT x.value FROM {table} x WHERE x.{parent} = {id_column} AND x.key = ?)"
            params.append(key.key)
        else:
            raise InvalidQuery(f"Invalid order_by entity {key.entity!r} here")
        terms.append(f"{expr} IS NULL, {expr} {'DESC' if key.descending else 'ASC'}")
        if "?" in expr:  # the expression appears twice: its parameter must too
            params.append(key.key)
    return ", ".join([*terms, default])


def fetch_page(con, select: str, where: list[str], order: str, params: list, max_results: int, page_token):
    """A page of ``select`` rows and the next page's token (None on the last page)."""
    if max_results is None or max_results < 1:
        raise InvalidQuery(f"Invalid max_results {max_results!r}: must be a positive integer")
    offset = decode_page_token(page_token)
    # ORDER BY parameters come after WHERE parameters in the SQL text.
    sql = f"{select} WHERE {' AND '.join(where) or 'true'} ORDER BY {order} LIMIT ? OFFSET ?"
    rows = con.execute(sql, [*params, page_limit(max_results), offset]).fetchall()
    token = encode_page_token(offset + max_results) if len(rows) > max_results else None
    return rows[:max_results], token


def search_experiments(
    con, view_type="ACTIVE_ONLY", filter=None, order_by=(), max_results=1000, page_token=None
):
    if view_type not in EXPERIMENT_VIEWS:
        raise InvalidQuery(f"Invalid view_type {view_type!r}; expected one of {list(EXPERIMENT_VIEWS)}")
    params: list = []
    children = {"tag": ("experiment_tags", False)}
    where = [EXPERIMENT_VIEWS[view_type]]
    where += where_clauses(
        parse_filter(filter, "attribute"), EXPERIMENT_ATTRIBUTES, children, "e.experiment_id", params
    )
    # MLflow's defaults: newest first, then by id; the id breaks ties of any other order, descending.
    keys = parse_order_by(order_by, default_entity="attribute")
    if not keys:
        default = f"e.creation_time DESC, {EXPERIMENT_ID_ORDER} ASC, e.experiment_id"
    elif any(k.entity == "attribute" and k.key == "experiment_id" for k in keys):
        default = "e.experiment_id"
    else:
        default = f"{EXPERIMENT_ID_ORDER} DESC, e.experiment_id"
    numeric_id = {"experiment_id": EXPERIMENT_ID_ORDER}
    order = _order(order_by, EXPERIMENT_ATTRIBUTES, children, "e.experiment_id", default, params, numeric_id)
    rows, token = fetch_page(con, EXPERIMENT_SELECT, where, order, params, max_results, page_token)
    return [_experiment_dict(row) for row in rows], token


def artifacts(con, run_id: str) -> list[dict]:
    cursor = con.execute(
        "SELECT path, size, sha256, actor, ts, seq FROM artifacts WHERE run_id = ? ORDER BY path", [run_id]
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


EVENT_FILTERS = {
    "run_id": "run_id = ?",
    "experiment_id": "experiment_id = ?",
    "actor": "actor = ?",
    "type": "type = ?",
    "since_ts": "ts >= ?",
    "until_ts": "ts <= ?",
}


def events_page(con, after=0, limit=100, newest_first=False, **filters) -> list[dict]:
    """The audit log: envelopes and summaries, by seq (``after`` is exclusive, or inclusive upper
    bound when ``newest_first``: pass the smallest seq seen to continue backwards)."""
    where, params = [], []
    if after:
        where.append("seq < ?" if newest_first else "seq > ?")
        params.append(after)
    for name, value in filters.items():
        if value is not None:
            where.append(EVENT_FILTERS[name])
            params.append(value)
    order = "DESC" if newest_first else "ASC"
    cursor = con.execute(
        f"SELECT * FROM events WHERE {' AND '.join(where) or 'true'} ORDER BY seq {order}, writer LIMIT ?",
        [*params, limit],
    )
    names = [d[0] for d in cursor.description]
    return [{k: v for k, v in zip(names, row, strict=True) if v is not None} for row in cursor.fetchall()]
