"""Reads of MLflow 3's logged models: one model, and the search the client sends.

The search copies MLflow's: a filter on attributes, params, tags and metrics (a model matches a
metric clause when any of its metric points does, on the given datasets if any), and order_by
items ``{field_name, ascending, dataset_name, dataset_digest}`` where ``metrics.<key>`` sorts by
the model's latest point of that metric; models lacking a sort value come last.
"""

from __future__ import annotations

from dataclasses import dataclass

from trackledger.projections.filters import InvalidQuery, parse_filter
from trackledger.projections.rows import one_row
from trackledger.projections.search import Attribute, Child, Query, Searchable, number_comparison, sort_term

_CREATED = Attribute("m.creation_timestamp_ms", numeric=True)
_UPDATED = Attribute("m.last_updated_timestamp_ms", numeric=True)
# Metric clauses are compiled here (they read the datasets of the search too), not as a child.
LOGGED_MODELS = Searchable(
    "logged_models m",
    {
        "model_id": Attribute("m.model_id"),
        "name": Attribute("m.name"),
        "status": Attribute("m.status"),
        "model_type": Attribute("m.model_type"),
        "source_run_id": Attribute("m.source_run_id"),
        "experiment_id": Attribute("m.experiment_id"),
        "creation_timestamp": _CREATED,
        "creation_time": _CREATED,
        "creation_timestamp_ms": _CREATED,
        "last_updated_timestamp": _UPDATED,
        "last_updated_timestamp_ms": _UPDATED,
    },
    {
        "param": Child("logged_model_params", "{x}.model_id = m.model_id"),
        "tag": Child("logged_model_tags", "{x}.model_id = m.model_id"),
    },
)
MODEL_COLUMNS = """m.model_id, m.experiment_id, m.name, m.creation_timestamp_ms, m.last_updated_timestamp_ms,
       m.artifact_location, m.status, m.model_type, m.source_run_id,
  (SELECT list({'key': key, 'value': value} ORDER BY key) FROM logged_model_tags t
   WHERE t.model_id = m.model_id),
  (SELECT list({'key': key, 'value': value} ORDER BY key) FROM logged_model_params p
   WHERE p.model_id = m.model_id),
  (SELECT list({'key': key, 'value': value, 'timestamp': timestamp, 'step': step, 'model_id': model_id,
                'run_id': run_id, 'dataset_name': dataset_name, 'dataset_digest': dataset_digest}
               ORDER BY key, step, timestamp, value)
     FROM (SELECT DISTINCT model_id, run_id, key, value, timestamp, step, dataset_name, dataset_digest
           FROM logged_model_metrics x WHERE x.model_id = m.model_id))"""
# The newest point of a metric of the model, on the order's datasets if it names any.
LATEST_METRIC = """(SELECT x.value FROM logged_model_metrics x
  WHERE x.model_id = m.model_id AND x.key = ?{datasets}
  ORDER BY x.timestamp DESC, x.step DESC, x.run_id LIMIT 1)"""


@dataclass(frozen=True)
class ModelOrderBy:
    """One item of a logged-model search's order_by, as the mlflow client sends it."""

    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True)
class DatasetFilter:
    """Models with metric points on this dataset (any digest when ``dataset_digest`` is None)."""

    dataset_name: str
    dataset_digest: str | None = None


def _dataset_sql(datasets) -> tuple[str, list]:
    """A condition on a metric row ``x``: it was computed on one of ``datasets``."""
    parts, params = [], []
    for d in datasets:
        if d.dataset_digest is None:
            parts.append("x.dataset_name = ?")
            params.append(d.dataset_name)
        else:
            parts.append("(x.dataset_name = ? AND x.dataset_digest = ?)")
            params += [d.dataset_name, d.dataset_digest]
    return " OR ".join(parts), params


def _model_dict(row) -> dict:
    model_id, experiment_id, name, created, updated, location, status, model_type, source_run_id = row[:9]
    tags, params, metrics = row[9:]
    info = {
        "model_id": model_id,
        "experiment_id": experiment_id,
        "name": name,
        "creation_timestamp_ms": created,
        "last_updated_timestamp_ms": updated,
        "artifact_uri": location,
        "status": status,
        "model_type": model_type or "",
    }
    if source_run_id:
        info["source_run_id"] = source_run_id
    if tags:
        info["tags"] = tags
    data = {}
    if params:
        data["params"] = params
    if metrics:
        data["metrics"] = [{k: v for k, v in m.items() if v is not None} for m in metrics]
    return {"info": info, "data": data}


def logged_model(con, model_id: str) -> dict | None:
    row = one_row(
        con,
        f"SELECT {MODEL_COLUMNS} FROM logged_models m WHERE m.model_id = ? AND m.lifecycle_stage = 'active'",
        [model_id],
    )
    return _model_dict(row) if row else None


def _metric_filters(query: Query, clauses, datasets) -> None:
    """A model matches a metric clause when one of its points does, on ``datasets`` if any."""
    dataset_sql, dataset_params = _dataset_sql(datasets)
    on_datasets = f" AND ({dataset_sql})" if dataset_sql else ""
    points = "SELECT 1 FROM logged_model_metrics x WHERE x.model_id = m.model_id"
    for clause in clauses:
        if clause.comparator in ("IS NULL", "IS NOT NULL"):  # whether the model has the metric at all
            negate = "NOT " if clause.comparator == "IS NULL" else ""
            query.restrict(
                f"{negate}EXISTS ({points} AND x.key = ?{on_datasets})", clause.key, *dataset_params
            )
            continue
        test = number_comparison("x.value", clause)
        query.restrict(
            f"EXISTS ({points} AND x.key = ? AND {test.text}{on_datasets})",
            clause.key,
            *test.params,
            *dataset_params,
        )
    if datasets and not clauses:  # any point on the datasets
        query.restrict(f"EXISTS ({points}{on_datasets})", *dataset_params)


def _order(query: Query, order_by) -> None:
    columns = set()
    for item in order_by:
        if "." not in item.field_name:
            if item.field_name not in LOGGED_MODELS.attributes:
                raise InvalidQuery(f"Invalid order by field name: {item.field_name}")
            column = LOGGED_MODELS.attributes[item.field_name].column
            columns.add(column)
            query.then_by(sort_term(column, not item.ascending))
            continue
        entity, key = item.field_name.split(".", 1)
        if entity != "metrics":
            raise InvalidQuery(f"Invalid order by field name: {item.field_name}. Only metrics are supported.")
        datasets = [DatasetFilter(item.dataset_name, item.dataset_digest)] if item.dataset_name else []
        dataset_sql, dataset_params = _dataset_sql(datasets)
        value = LATEST_METRIC.format(datasets=f" AND ({dataset_sql})" if dataset_sql else "")
        query.then_by(
            sort_term(value, not item.ascending), *[key, *dataset_params] * 2
        )  # the subquery is there twice
    # MLflow's tie-breaks: newest first, then by id, unless the order already names them.
    if "m.creation_timestamp_ms" not in columns:
        query.then_by("m.creation_timestamp_ms DESC")
    if "m.model_id" not in columns:
        query.then_by("m.model_id")


def search_logged_models(
    con, experiment_ids, filter="", order_by=(), max_results=100, page_token=None, datasets=()
) -> tuple[list[dict], str | None]:
    """A page of active logged models of ``experiment_ids`` and the next page's token.

    ``order_by``: ``ModelOrderBy`` items; ``datasets``: ``DatasetFilter`` items."""
    query = LOGGED_MODELS.query()
    query.restrict("m.experiment_id = ANY(?::VARCHAR[])", [str(e) for e in experiment_ids or ()])
    query.restrict("m.lifecycle_stage = 'active'")
    clauses = parse_filter(filter, "attribute")
    for clause in clauses:
        if clause.entity != "metric":
            query.restrict(query.condition(clause))
    _metric_filters(query, [c for c in clauses if c.entity == "metric"], datasets)
    _order(query, order_by)
    rows, token = query.page(con, MODEL_COLUMNS, max_results, page_token)
    return [_model_dict(row) for row in rows], token
