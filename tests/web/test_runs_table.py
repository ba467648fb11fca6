"""The runs table's query without a browser: the REST search's query with the page's columns
joined, so its sort follows MLflow's order and its total counts what the filter lets through."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from trackledger.api.web import reads
from trackledger.api.web.runs_table import RunsQuery, RunsTable
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.projections import InvalidQuery, Projection


def make(cls, **fields):
    return cls(id=E.new_event_id(), actor="alice", **fields)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs-table")
    with Ledger(root / "store", root / "state") as ledger:
        projection = Projection(ledger)
        events = [
            make(E.ExperimentCreated, experiment_id="1", name="e", artifact_location="a", creation_time=1)
        ]
        for i, acc in enumerate([0.9, math.nan, 0.5, None]):
            run = dict(
                experiment_id="1", run_id=f"r{i}", name=f"run {i}", user_id="u", start_time=i, artifact_uri=""
            )
            events.append(make(E.RunCreated, **run))
            metrics = [] if acc is None else [E.Metric("acc", acc, 1, 0)]
            events.append(make(E.BatchLogged, experiment_id="1", run_id=f"r{i}", metrics=metrics))
        projection.submit(ledger.append(events))
        projection.flush()
        yield SimpleNamespace(projection=projection)
        projection.close()


def page(ctx, **query) -> RunsTable:
    table = RunsTable(RunsQuery(**query), all_params=[], all_metrics=["acc"])
    reads.runs_page(ctx, "1", table)
    return table


def names(table: RunsTable) -> list[str]:
    return [row["name"] for row in table.rows]


def test_a_metric_column_sorts_nan_after_numbers_and_missing_last_both_ways(ctx):
    assert names(page(ctx, sort="m:acc", direction="desc")) == ["run 0", "run 2", "run 1", "run 3"]
    assert names(page(ctx, sort="m:acc", direction="asc")) == ["run 2", "run 0", "run 1", "run 3"]
    assert names(page(ctx)) == ["run 3", "run 2", "run 1", "run 0"]  # newest first


def test_filter_and_total_and_a_page_past_the_end(ctx):
    table = page(ctx, filter="metrics.acc > 0.1", per_page=25)
    assert names(table) == ["run 2", "run 0"] and table.total == 2
    table = page(ctx, filter="metrics.acc != 0.5", page=9, per_page=25)
    assert table.rows == [] and table.total == 2  # NaN matches only !=, as in MLflow
    with pytest.raises(InvalidQuery):
        page(ctx, filter="metrics.acc > 'x'")
