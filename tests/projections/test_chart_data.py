"""Chart data sampled in DuckDB: bounded points per line with the endpoints and extremes kept,
latest values per run with params and parents, and the reader's scope applied."""

from __future__ import annotations

import math

import pytest
from trackledger.ledger import events as E
from trackledger.projections import chart_data, runs
from trackledger.projections.scope import IdSet, Scope, reading_as

from tests.projections.conftest import make

STEPS = 1_000


@pytest.fixture
def sweep(log):
    """Experiment 1: run a (1,000 steps of loss, one spike at step 517), run b (3 steps), run c,
    a child of a; experiment 2: run z."""
    events = [
        make(E.ExperimentCreated, experiment_id="1", name="one", artifact_location="a", creation_time=1),
        make(E.ExperimentCreated, experiment_id="2", name="two", artifact_location="a", creation_time=1),
    ]
    for run_id, experiment_id, name in (
        ("a", "1", "parent"),
        ("b", "1", "b"),
        ("c", "1", "fold"),
        ("z", "2", "z"),
    ):
        tags = [E.Tag("mlflow.parentRunId", "a")] if run_id == "c" else []
        events.append(
            make(
                E.RunCreated,
                experiment_id=experiment_id,
                run_id=run_id,
                name=name,
                user_id="u",
                start_time=100,
                artifact_uri="",
                tags=tags,
            )
        )
    loss = [E.Metric("loss", 10.0 if s == 517 else 1 / (s + 1), 1000 + s, s) for s in range(STEPS)]
    events += [
        make(E.BatchLogged, experiment_id="1", run_id="a", metrics=loss, params=[E.Param("lr", "0.1")]),
        make(
            E.BatchLogged,
            experiment_id="1",
            run_id="b",
            metrics=[E.Metric("loss", v, 10 + s, s) for s, v in enumerate([3.0, math.nan, 1.0])]
            + [E.Metric("accuracy", 0.9, 10, 0)],
            params=[E.Param("lr", "0.01")],
        ),
        make(E.BatchLogged, experiment_id="1", run_id="c", metrics=[E.Metric("loss", 2.0, 5, 0)]),
        make(E.BatchLogged, experiment_id="2", run_id="z", metrics=[E.Metric("loss", 7.0, 5, 0)]),
    ]
    log(*events)


def lines(table) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for row in table.to_pylist():
        out.setdefault(row["run_id"], []).append((row["step"], row["value"]))
    return out


@pytest.mark.parametrize("points", [2, 3, 50, 201])
def test_a_long_line_is_thinned_to_at_most_the_points_asked_with_its_ends_and_spike(
    projection, sweep, points
):
    query = runs.run_query(["1"])
    found = lines(projection.query(chart_data.sampled_histories, query, ["loss"], points))
    long = found["a"]
    assert 2 <= len(long) <= max(points, 4)
    assert long[0] == (0, 1.0) and long[-1] == (STEPS - 1, 1 / STEPS)  # the ends are kept
    assert (517, 10.0) in long  # the highest value survives the thinning
    assert [step for step, _ in long] == sorted(step for step, _ in long)
    # Short lines come whole, NaN included; the other experiment's run is not there.
    assert [s for s, _ in found["b"]] == [0, 1, 2] and math.isnan(found["b"][1][1])
    assert set(found) == {"a", "b", "c"}


def test_a_line_shorter_than_the_budget_is_not_thinned(projection, sweep):
    table = projection.query(chart_data.sampled_histories, runs.run_query(["1"]), ["loss"], STEPS)
    assert len(lines(table)["a"]) == STEPS


def test_the_runs_filter_chooses_the_lines(projection, sweep):
    query = runs.run_query(["1"]).filter("params.lr = '0.01'")
    assert set(lines(projection.query(chart_data.sampled_histories, query, ["loss"], 10))) == {"b"}


def test_run_values_carry_params_latest_metrics_and_the_parent(projection, sweep):
    rows, total = projection.query(chart_data.run_values, runs.run_query(["1"]), 10)
    assert total == 3 and len(rows) == 3
    by_id = {row["run_id"]: row for row in rows}
    assert by_id["c"]["parent_id"] == "a" and by_id["c"]["parent_name"] == "parent"
    assert by_id["a"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert {m["key"]: m["value"] for m in by_id["b"]["metrics"]} == {"accuracy": 0.9, "loss": 1.0}
    rows, total = projection.query(chart_data.run_values, runs.run_query(["1"]), 2)
    assert len(rows) == 2 and total == 3  # the total counts past the limit


def test_points_per_run_tells_single_values_from_lines(projection, sweep):
    counts = projection.query(chart_data.points_per_run, runs.run_query(["1"]))
    assert counts == {"accuracy": 1, "loss": STEPS}


def test_a_reader_without_read_on_the_experiment_gets_nothing(projection, sweep):
    only_two = Scope(IdSet(frozenset({"2"}), allow=True), IdSet(frozenset(), allow=True), "bob")
    query_one = runs.run_query(["1"])
    with reading_as(only_two):
        assert projection.query(chart_data.sampled_histories, query_one, ["loss"], 10).num_rows == 0
        assert projection.query(chart_data.run_values, runs.run_query(["1"]), 10) == ([], 0)
        assert projection.query(chart_data.points_per_run, runs.run_query(["1"])) == {}
        # A query naming the run ids directly finds no more.
        by_ids = runs.RUNS.query().restrict("list_contains(?::VARCHAR[], r.run_id)", ["a", "z"])
        assert set(lines(projection.query(chart_data.sampled_histories, by_ids, ["loss"], 10))) == {"z"}
