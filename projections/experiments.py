"""Experiment reads: one experiment, by id or by name, and their search."""

from __future__ import annotations

import duckdb
from trackledger.projections.filters import parse_order_by
from trackledger.projections.rows import one_row
from trackledger.projections.search import Attribute, Child, Searchable
from trackledger.projections.view_types import lifecycle_condition

# Experiment ids are numbers in text: they sort as numbers, as MLflow's integer column does.
EXPERIMENT_ID_ORDER = "TRY_CAST(e.experiment_id AS BIGINT)"
EXPERIMENTS = Searchable(
    "experiments e",
    {
        "experiment_id": Attribute("e.experiment_id", sort=EXPERIMENT_ID_ORDER),
        "name": Attribute("e.name"),
        "artifact_location": Attribute("e.artifact_location"),
        "lifecycle_stage": Attribute("e.lifecycle_stage"),
        "creation_time": Attribute("e.creation_time", numeric=True),
        "last_update_time": Attribute("e.last_update_time", numeric=True),
    },
    {"tag": Child("experiment_tags", "{x}.experiment_id = e.experiment_id")},
)
EXPERIMENT_COLUMNS = """e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.last_update_time,
  e.creation_time,
  (SELECT list({'key': key, 'value': value} ORDER BY key) FROM experiment_tags t
   WHERE t.experiment_id = e.experiment_id) AS tags"""


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


def experiment(con: duckdb.DuckDBPyConnection, experiment_id: str) -> dict | None:
    sql = f"SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.experiment_id = ?"
    row = one_row(con, sql, [str(experiment_id)])
    return _experiment_dict(row) if row else None


def experiment_by_name(con: duckdb.DuckDBPyConnection, name: str) -> dict | None:
    row = one_row(con, f"SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.name = ?", [name])
    return _experiment_dict(row) if row else None


def search_experiments(
    con, view_type="ACTIVE_ONLY", filter=None, order_by=(), max_results=1000, page_token=None, scope=None
) -> tuple[list[dict], str | None]:
    """A page of experiments and the next page's token; raises ``InvalidQuery``. ``scope``: only
    the experiments it may read (see ``projections.scope``)."""
    query = EXPERIMENTS.query().restrict(lifecycle_condition(view_type, "e.lifecycle_stage"))
    if scope is not None:
        query.restrict(*scope.experiment_condition("e.experiment_id"))
    query.filter(filter)
    # MLflow's defaults: newest first, then by id; the id breaks ties of any other order, descending.
    keys = parse_order_by(order_by, default_entity="attribute")
    if not keys:
        query.then_by(f"e.creation_time DESC, {EXPERIMENT_ID_ORDER} ASC, e.experiment_id")
    elif any(k.entity == "attribute" and k.key == "experiment_id" for k in keys):
        query.order_keys(keys).then_by("e.experiment_id")
    else:
        query.order_keys(keys).then_by(f"{EXPERIMENT_ID_ORDER} DESC, e.experiment_id")
    rows, token = query.page(con, EXPERIMENT_COLUMNS, max_results, page_token)
    return [_experiment_dict(row) for row in rows], token
