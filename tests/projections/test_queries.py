"""MLflow semantics of the reads: search filters, ordering, paging, view types, latest metrics."""

from __future__ import annotations

import json
import math

import pytest
from trackledger.ledger import events as E
from trackledger.projections import InvalidQuery, as_of, connect, experiments
from trackledger.projections import history as histories
from trackledger.projections import runs as run_queries
from trackledger.projections.search import encode_page_token

from tests.projections.conftest import make


@pytest.fixture
def runs(log):
    log(
        make(E.ExperimentCreated, experiment_id="1", name="Churn", artifact_location="a:/1", creation_time=1),
        make(E.ExperimentCreated, experiment_id="2", name="Other", artifact_location="a:/2", creation_time=2),
    )
    for i, (name, acc) in enumerate([("Alice's run", 0.9), ("bob run", 0.5), ("carol", None)]):
        run_id = f"r{i}"
        log(
            make(
                E.RunCreated,
                experiment_id="1",
                run_id=run_id,
                name=name,
                user_id="u",
                start_time=10 + i,
                artifact_uri="u",
                tags=[E.Tag("mlflow.runName", name)],
            )
        )
        metrics = [] if acc is None else [E.Metric("acc", acc, 100, 1), E.Metric("acc", 0.1, 50, 0)]
        log(
            make(
                E.BatchLogged,
                experiment_id="1",
                run_id=run_id,
                metrics=metrics,
                params=[E.Param("C", str(i))],
                tags=[E.Tag("team", "Churn" if i else "churn")],
            )
        )
    return ["r0", "r1", "r2"]


def search_runs(projection, *args, **kwargs):
    """A page of the REST search's runs, as dicts."""
    text, token = projection.query(run_queries.search_runs_json, *args, **kwargs)
    return run_queries.decode_runs(text), token


def history_points(projection, run_id, key, **kwargs):
    """A page of the REST history's points, as dicts with float values."""
    text, token = projection.query(histories.metric_history_json, run_id, key, **kwargs)
    points = json.loads(text)
    for point in points:
        point["value"] = float(point["value"])
    return points, token


def ids(result):
    return [r["info"]["run_id"] for r in result[0]]


def test_filters(projection, runs):
    search = lambda f: ids(search_runs(projection, ["1"], f))  # noqa: E731
    assert search("metrics.acc > 0.6") == ["r0"]
    assert search("metrics.acc >= 0.5 AND params.C = '1'") == ["r1"]
    assert search("tags.team LIKE 'c%'") == ["r0"]
    assert sorted(search("tags.team ILIKE 'c%'")) == ["r0", "r1", "r2"]
    assert search("tags.`mlflow.runName` = 'bob run'") == ["r1"]
    assert search("params.\"C\" IN ('0', '2')") == ["r2", "r0"]
    assert search("attributes.run_id NOT IN ('r0', 'r1')") == ["r2"]
    assert search("attributes.run_name = 'Alice''s run'") == []  # MLflow keeps '' verbatim
    assert search("metrics.acc IS NULL") == ["r2"]


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.acc > 'x'",
        "params.C > '1'",
        "foo = 1",
        "attributes.nope = 'x'",
        "metrics.acc = 1 OR metrics.acc = 2",
        "params.C = '1'; DROP TABLE runs",
    ],
)
def test_bad_filters_raise(projection, runs, bad):
    with pytest.raises(InvalidQuery):
        search_runs(projection, ["1"], bad)


def test_injection_is_just_data(projection, runs):
    assert ids(search_runs(projection, ["1"], "params.C = '1'' OR 1=1 --'")) == []
    assert projection.query(run_queries.run, "r0") is not None


def test_order_by_puts_missing_last_both_ways(projection, runs):
    assert ids(search_runs(projection, ["1"], order_by=["metrics.acc DESC"])) == ["r0", "r1", "r2"]
    assert ids(search_runs(projection, ["1"], order_by=["metrics.acc ASC"])) == ["r1", "r0", "r2"]
    assert ids(search_runs(projection, ["1"])) == ["r2", "r1", "r0"]  # start_time DESC
    assert ids(search_runs(projection, ["1"], order_by=["tags.team", "attributes.start_time DESC"])) == [
        "r2",
        "r1",
        "r0",
    ]


def test_nan_metrics_match_only_not_equal_and_sort_after_numbers(projection, runs, log):
    log(make(E.BatchLogged, run_id="r2", metrics=[E.Metric("acc", math.nan, 100, 1)]))
    search = lambda f: sorted(ids(search_runs(projection, ["1"], f)))  # noqa: E731
    assert search("metrics.acc > 0.6") == ["r0"]
    assert search("metrics.acc >= 0.5") == ["r0", "r1"]
    assert search("metrics.acc > 1e308") == []
    assert search("metrics.acc < 10") == ["r0", "r1"]
    assert search("metrics.acc != 0.5") == ["r0", "r2"]
    no_acc = dict(experiment_id="1", run_id="r3", name="d", user_id="u", start_time=1, artifact_uri="")
    log(make(E.RunCreated, **no_acc))
    order = lambda o: ids(search_runs(projection, ["1"], order_by=[o]))  # noqa: E731
    assert order("metrics.acc DESC") == ["r0", "r1", "r2", "r3"]
    assert order("metrics.acc ASC") == ["r1", "r0", "r2", "r3"]


def test_keys_without_a_prefix_are_attributes_with_mlflow_aliases(projection, runs):
    search = lambda f, o=(): ids(search_runs(projection, ["1"], f, order_by=o))  # noqa: E731
    assert search("run_name = 'bob run'") == ["r1"]
    assert search("`Run name` = 'bob run'") == ["r1"]
    assert search("attributes.`run name` LIKE 'bob%'") == ["r1"]
    assert search("attributes.Created > 10") == ["r2", "r1"]
    assert search("", ["start_time ASC"]) == ["r0", "r1", "r2"]
    assert search("", ["run_name DESC"]) == ["r2", "r1", "r0"]
    assert search("", ["Created"]) == ["r0", "r1", "r2"]


def test_paging(projection, runs):
    page, token = search_runs(projection, ["1"], max_results=2)
    assert len(page) == 2 and token
    rest, last = search_runs(projection, ["1"], max_results=2, page_token=token)
    assert [r["info"]["run_id"] for r in page + rest] == ["r2", "r1", "r0"] and last is None
    with pytest.raises(InvalidQuery):
        search_runs(projection, ["1"], page_token="not-a-token")


def test_view_types_and_deleted_experiment(projection, runs, log):
    log(make(E.RunDeleted, run_id="r0"))
    assert ids(search_runs(projection, ["1"], run_view_type="DELETED_ONLY")) == ["r0"]
    assert projection.query(run_queries.run, "r0")["info"]["lifecycle_stage"] == "deleted"
    log(make(E.ExperimentDeleted, experiment_id="1"))
    # As in MLflow, deleting an experiment deletes its runs, and restoring it restores them all.
    assert ids(search_runs(projection, ["1"])) == []
    assert ids(search_runs(projection, ["1"], run_view_type="DELETED_ONLY")) == ["r2", "r1", "r0"]
    assert projection.query(run_queries.run, "r1")["info"]["lifecycle_stage"] == "deleted"
    assert ids(search_runs(projection, ["1"], "attributes.lifecycle_stage = 'deleted'", "ALL")) == [
        "r2",
        "r1",
        "r0",
    ]
    log(make(E.ExperimentRestored, experiment_id="1"))
    assert ids(search_runs(projection, ["1"])) == ["r2", "r1", "r0"]
    assert projection.query(run_queries.run, "r0")["info"]["lifecycle_stage"] == "active"
    log(make(E.RunDeleted, run_id="r2"), make(E.ExperimentDeleted, experiment_id="1"))
    log(make(E.RunRestored, run_id="r1"))  # a run restored on its own while its experiment stays deleted
    assert ids(search_runs(projection, ["1"])) == ["r1"]


def test_latest_metric_and_history(projection, log, runs):
    log(
        make(
            E.BatchLogged,
            run_id="r2",
            metrics=[
                E.Metric("m", 1.0, 5, 2),
                E.Metric("m", math.nan, 5, 2),
                E.Metric("m", 3.0, 1, 1),
                E.Metric("m", 1.0, 5, 2, model_id="m-1"),
            ],
        )
    )
    latest = {m["key"]: m for m in projection.query(run_queries.run, "r2")["data"]["metrics"]}
    assert latest["m"] == {"key": "m", "value": 1.0, "timestamp": 5, "step": 2}
    history, token = history_points(projection, "r2", "m")
    # MLflow's order: timestamp, step, then value with NaN as 0; the duplicate point counts once.
    assert repr([(h["timestamp"], h["step"], h["value"]) for h in history]) == repr(
        [(1, 1, 3.0), (5, 2, math.nan), (5, 2, 1.0)]
    )
    page, token = history_points(projection, "r2", "m", max_results=2)
    assert len(page) == 2 and token
    rest, last = history_points(projection, "r2", "m", max_results=2, page_token=token)
    assert repr(page + rest) == repr(history) and last is None  # repr: nan != nan
    text, _ = projection.query(
        histories.metric_history_json, "r2", "m", max_results=1, page_token=encode_page_token(1)
    )
    assert json.loads(text) == [{"key": "m", "value": "NaN", "timestamp": 5, "step": 2}]
    table = projection.query(histories.metric_history_arrow, ["r0", "r2"], ["acc", "m"])
    assert table.num_rows == 5 and table.column_names == ["run_id", "key", "step", "timestamp", "value"]


@pytest.mark.parametrize(
    ("points", "latest"),
    [
        ([(math.nan, 5, 2), (-5.0, 5, 2)], math.nan),  # a tie of -5 against NaN (as 0): NaN stays
        ([(-math.inf, 5, 2), (math.nan, 5, 2)], math.nan),  # NaN (as 0) beats -inf
        ([(math.nan, 5, 2), (0.0, 5, 2)], math.nan),  # a full tie: the first logged stays
        ([(math.nan, 5, 2), (0.5, 5, 2)], 0.5),
        ([(2.0, 5, 2), (1.0, 6, 2)], 1.0),  # a later timestamp beats a larger value
        ([(2.0, 9, 2), (1.0, 1, 3)], 1.0),  # a higher step beats a later timestamp
    ],
)
@pytest.mark.parametrize("split", [False, True], ids=["one call", "two calls"])
def test_latest_metric_follows_mlflow_with_nan_as_zero(projection, log, runs, points, latest, split):
    metrics = [E.Metric("t", value, ts, step) for value, ts, step in points]
    calls = [[m] for m in metrics] if split else [metrics]
    for call in calls:
        log(make(E.BatchLogged, run_id="r1", metrics=call))
    (value,) = [
        m["value"] for m in projection.query(run_queries.run, "r1")["data"]["metrics"] if m["key"] == "t"
    ]
    assert repr(value) == repr(latest)


def test_non_finite_latest_metrics_are_floats_in_dicts_and_strings_in_json(projection, log, runs):
    log(
        make(
            E.BatchLogged,
            run_id="r2",
            metrics=[
                E.Metric("nan", math.nan, 5, 0),
                E.Metric("inf", math.inf, 5, 0),
                E.Metric("ninf", -math.inf, 5, 0),
            ],
        )
    )
    latest = {m["key"]: m["value"] for m in projection.query(run_queries.run, "r2")["data"]["metrics"]}
    assert math.isnan(latest["nan"]) and latest["inf"] == math.inf and latest["ninf"] == -math.inf
    text, token = projection.query(
        run_queries.search_runs_json, ["1"], filter="attributes.run_name = 'carol'"
    )
    found = json.loads(text)
    assert token is None and [r["info"]["run_id"] for r in found] == ["r2"]
    as_json = {m["key"]: m["value"] for m in found[0]["data"]["metrics"]}
    assert as_json == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity"}


def test_run_shape_and_datasets(projection, log, runs):
    context = [E.Tag("mlflow.data.context", "train")]
    dataset = E.Dataset("ds", "d1", "local", "{}", tags=context)
    log(make(E.InputsLogged, run_id="r1", datasets=[dataset]))
    log(make(E.InputsLogged, run_id="r1", datasets=[dataset]))
    log(make(E.RunUpdated, run_id="r1", status="FINISHED", end_time=99, name="renamed"))
    run = projection.query(run_queries.run, "r1")
    assert run["info"]["run_uuid"] == run["info"]["run_id"] == "r1"
    assert run["info"]["run_name"] == "renamed" and run["info"]["end_time"] == 99
    assert {"key": "mlflow.runName", "value": "renamed"} in run["data"]["tags"]
    assert run["inputs"] == {
        "dataset_inputs": [
            {
                "tags": [{"key": "mlflow.data.context", "value": "train"}],
                "dataset": {"name": "ds", "digest": "d1", "source_type": "local", "source": "{}"},
            }
        ]
    }
    assert run["outputs"] == {}
    assert "end_time" not in projection.query(run_queries.run, "r2")["info"]
    assert projection.query(run_queries.run, "missing") is None


def test_experiments_order_by_id_as_numbers_and_break_ties_as_mlflow(projection, log):
    same_time = dict(artifact_location="", creation_time=1)
    log(*[make(E.ExperimentCreated, experiment_id=str(i), name=f"e{i}", **same_time) for i in range(1, 13)])

    def order(*o):
        return [e["experiment_id"] for e in projection.query(experiments.search_experiments, order_by=o)[0]]

    numbers = [str(i) for i in range(1, 13)]
    assert order("experiment_id") == numbers
    assert order("experiment_id DESC") == numbers[::-1]
    assert order() == numbers  # newest first, then by id
    assert order("creation_time") == numbers[::-1]  # any other order: ties by id, descending
    assert order("creation_time", "experiment_id ASC") == numbers


def test_experiments(projection, runs, log):
    found, _ = projection.query(experiments.search_experiments)
    assert [e["experiment_id"] for e in found] == ["2", "1"]
    found, token = projection.query(
        experiments.search_experiments,
        view_type="ALL",
        filter="name LIKE 'C%'",
        order_by=["name ASC"],
        max_results=1,
    )
    assert [e["name"] for e in found] == ["Churn"] and token is None
    log(
        make(E.ExperimentRenamed, experiment_id="1", name="Renamed"),
        make(E.ExperimentTagSet, experiment_id="1", key="k", value="v"),
    )
    assert projection.query(experiments.experiment_by_name, "Renamed")["tags"] == [{"key": "k", "value": "v"}]
    assert [
        e["name"] for e in projection.query(experiments.search_experiments, filter="tags.k = 'v'")[0]
    ] == ["Renamed"]


def test_time_travel_and_connect(ledger, runs, log):
    seq_before_delete = ledger.last_seq
    log(make(E.RunDeleted, run_id="r0"))
    ledger.roll()
    con = connect(ledger.store.url(""))
    assert con.execute("SELECT lifecycle_stage FROM runs WHERE run_id = 'r0'").fetchone() == ("deleted",)
    past = as_of(ledger.store.url(""), seq=seq_before_delete)
    assert past.execute("SELECT lifecycle_stage FROM runs WHERE run_id = 'r0'").fetchone() == ("active",)
    assert past.execute("SELECT count(*) FROM events").fetchone()[0] == seq_before_delete


def test_rebuild_equals_live(projection, runs, log):
    log(make(E.RunTagDeleted, run_id="r1", key="team"), make(E.RunRestored, run_id="r1"))
    before = projection.sql("SELECT * FROM run_tags ORDER BY ALL").to_pylist()
    projection.rebuild()
    assert projection.sql("SELECT * FROM run_tags ORDER BY ALL").to_pylist() == before


def test_bulk_history_counts_exact_duplicates_once(projection, log, runs):
    nan = math.nan
    points = [
        E.Metric("d", 1.0, 5, 1),
        E.Metric("d", 1.0, 5, 1),
        E.Metric("d", nan, 5, 1),
        E.Metric("d", nan, 5, 1),
        E.Metric("d", 1.0, 6, 1),
        E.Metric("d", 1.0, 5, 2),
    ]
    log(
        make(E.BatchLogged, run_id="r0", metrics=points), make(E.BatchLogged, run_id="r1", metrics=points[:2])
    )
    table = projection.query(histories.metric_history_arrow, ["r0", "r1"], ["d"])
    rows = [
        (r["run_id"], r["step"], r["timestamp"], "NaN" if math.isnan(r["value"]) else r["value"])
        for r in table.to_pylist()
    ]
    assert rows == [
        ("r0", 1, 5, 1.0),
        ("r0", 1, 5, "NaN"),
        ("r0", 1, 6, 1.0),
        ("r0", 2, 5, 1.0),
        ("r1", 1, 5, 1.0),
    ]
    assert len(history_points(projection, "r0", "d")[0]) == 4


def test_audit_summary_says_what_a_log_call_changed(projection, runs, log):
    many = [E.Metric(f"k{i % 3}", float(i), 1, i) for i in range(50)]
    log(make(E.BatchLogged, experiment_id="1", run_id="r0", metrics=many))
    summaries = [s for (s,) in projection.read("SELECT summary FROM events WHERE run_id = 'r0' ORDER BY seq")]
    assert "params C=0; metrics acc=0.9 (step 1), acc=0.1 (step 0); tags team=churn" in summaries
    assert summaries[-1] == "50 metric points of k0, k1, k2"
