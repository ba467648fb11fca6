"""The runs table's query without a browser: the REST search's query with the page's columns
joined, so its sort follows MLflow's order and its total counts what the filter lets through."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from trackledger.api.web import runs_reads
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
        events += nested_sweep()
        projection.submit(ledger.append(events))
        projection.flush()
        yield SimpleNamespace(projection=projection)
        projection.close()


# Experiment 2: (name, parent, start time, acc); children share names across parents.
NESTED = [
    ("search-0", None, 10, 0.5),
    ("fold-0", "search-0", 11, 0.7),
    ("fold-1", "search-0", 12, 0.6),
    ("inner", "fold-0", 13, 0.1),
    ("search-1", None, 20, 0.9),
    ("fold-0", "search-1", 21, 0.2),
    ("search-2", None, 30, 0.3),
    ("itself", "itself", 40, 0.4),  # a parent tag naming the run itself: top level
]


def nested_sweep() -> list:
    by_name = {"search-0": "n0", "fold-0": "n1", "search-1": "n4", "search-2": "n6", "itself": "n7"}
    events = [make(E.ExperimentCreated, experiment_id="2", name="n", artifact_location="a", creation_time=1)]
    for i, (name, parent, start, acc) in enumerate(NESTED):
        tags = [E.Tag("mlflow.parentRunId", by_name[parent])] if parent else []
        run = dict(
            experiment_id="2", run_id=f"n{i}", name=name, user_id="u", start_time=start, artifact_uri=""
        )
        events.append(make(E.RunCreated, **run, tags=tags))
        events.append(
            make(
                E.BatchLogged,
                experiment_id="2",
                run_id=f"n{i}",
                metrics=[E.Metric("acc", acc, 1, 0)],
                params=[E.Param("group", name.split("-")[0])],
            )
        )
    return events


def page(ctx, **query) -> RunsTable:
    table = RunsTable(RunsQuery(**query), all_params=[], all_metrics=["acc"])
    runs_reads.runs_page(ctx, "1", table)
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


def tree(ctx, **query) -> RunsTable:
    table = RunsTable(RunsQuery(**query), all_params=["group"], all_metrics=["acc"])
    runs_reads.runs_page(ctx, "2", table)
    return table


def shape(table: RunsTable) -> list[tuple[str, int]]:
    return [(row["name"], row["depth"]) for row in table.rows]


def test_children_follow_their_parent_sorted_as_the_parents_are(ctx):
    table = tree(ctx)  # newest first, at every level
    assert shape(table) == [
        ("itself", 0),
        ("search-2", 0),
        ("search-1", 0),
        ("fold-0", 1),
        ("search-0", 0),
        ("fold-1", 1),
        ("fold-0", 1),
        ("inner", 2),
    ]
    assert (table.total, table.total_runs) == (4, 8)
    search0 = next(row for row in table.rows if row["name"] == "search-0")
    assert search0["children"] == 2 and table.rows[-1]["parent_id"] == "n1"

    by_acc = tree(ctx, sort="m:acc", direction="desc")
    assert shape(by_acc)[:4] == [("search-1", 0), ("fold-0", 1), ("search-0", 0), ("fold-0", 1)]
    assert shape(by_acc)[4:6] == [("inner", 2), ("fold-1", 1)]


def test_pages_count_top_level_runs_and_carry_their_children(ctx):
    second = tree(ctx, sort="start", direction="asc", per_page=1, page=1)
    assert shape(second) == [("search-0", 0), ("fold-0", 1), ("inner", 2), ("fold-1", 1)]
    assert (second.total, second.pages, second.first, second.last) == (4, 4, 1, 1)
    past = tree(ctx, per_page=25, page=3)
    assert past.rows == [] and (past.total, past.total_runs) == (4, 8)


def test_a_child_whose_parent_is_filtered_out_is_shown_at_the_top_level_naming_it(ctx):
    table = tree(ctx, filter="params.group = 'fold'")
    assert shape(table) == [("fold-0", 0), ("fold-1", 0), ("fold-0", 0)]
    assert table.rows[0]["outside_parent"] == ("n4", "search-1")
    assert table.rows[1]["outside_parent"] == ("n0", "search-0")
    assert (table.total, table.total_runs) == (3, 3)
