"""Catch-up from segments: segments of older schemas, and steps bounded by the items they hold."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.ledger import ledger as ledger_module
from trackledger.ledger.schema import events_to_table
from trackledger.ledger.segments import list_segments, segment_relpath
from trackledger.ledger.store import open_store
from trackledger.projections import sources
from trackledger.projections.schema import create_tables
from trackledger.projections.sources import catch_up

from tests.projections.conftest import make
from trackledger import projections


def _stamp(events):
    return [
        type(e)(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": i + 1, "writer": "w"})
        for i, e in enumerate(events)
    ]


def test_segments_lacking_newer_columns_rebuild(tmp_path):
    """A segment of an older schema has no column for fields added since: the apply statements
    read them as null, even when no segment of the batch has them."""
    events = [
        make(E.ExperimentCreated, experiment_id="1", name="e", artifact_location="a", creation_time=1),
        make(
            E.RunCreated, experiment_id="1", run_id="r", name="n", user_id="u", start_time=1, artifact_uri="u"
        ),
        make(E.BatchLogged, run_id="r", params=[E.Param("p", "1")]),
    ]
    stamped = _stamp(events)
    # As written before inputs and outputs were logged: the audit statement reads both columns.
    table = events_to_table(stamped).drop_columns(["datasets", "models"])
    path = tmp_path / segment_relpath("w", 1, len(stamped))
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    con = projections.connect(tmp_path)
    assert con.execute("SELECT run_id, key, value FROM params").fetchall() == [("r", "p", "1")]
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(3,)]


def test_a_registry_from_before_schema_version_2_rebuilds_with_what_came_after(tmp_path):
    """Registry events of version 1 name their model only (no registered_model_id column); the
    events written after carry the key the write path gives such a model: its name."""
    old = [
        make(E.RegisteredModelCreated, name="churn", tags=[E.Tag("team", "a")]),
        make(E.ModelVersionCreated, name="churn", version=1, source="s"),
        make(E.RegisteredModelAliasSet, name="churn", key="champion", version=1),
    ]
    new = [
        make(
            E.RegisteredModelRenamed,
            name="churn",
            new_name="churn-eu",
            registered_model_id="churn",
            versions=[1],
        ),
        make(
            E.ModelVersionStageChanged,
            name="churn-eu",
            version=1,
            stage="Staging",
            registered_model_id="churn",
        ),
    ]
    stamped = _stamp(old + new)
    written = events_to_table(stamped[:3]).drop_columns(["registered_model_id", "new_name", "stage"])
    for table, first, last in ((written, 1, 3), (events_to_table(stamped[3:]), 4, 5)):
        path = tmp_path / segment_relpath("w", first, last)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        con = projections.connect(tmp_path)
        if last == 3:  # a store upgraded before any registry event of version 2 was written
            assert con.execute("SELECT registered_model_id, name FROM registered_models").fetchall() == [
                ("churn", "churn")
            ]
    assert con.execute("SELECT registered_model_id, name FROM registered_models").fetchall() == [
        ("churn", "churn-eu")
    ]
    assert con.execute("SELECT version, current_stage FROM model_versions").fetchall() == [(1, "Staging")]
    assert con.execute("SELECT alias FROM registered_model_aliases").fetchall() == [("champion",)]


def _log_points(ledger, runs: int, batches: int, points: int, prefix: str = "r") -> None:
    """``runs`` runs of experiment 1, each with ``batches`` events of ``points`` metric points."""
    for r in range(runs):
        run_id = f"{prefix}{r}"
        ledger.append(
            [
                make(
                    E.RunCreated,
                    experiment_id="1",
                    run_id=run_id,
                    name=run_id,
                    user_id="u",
                    start_time=1,
                    artifact_uri="u",
                )
            ]
        )
        for b in range(batches):
            metrics = [E.Metric(f"m{i % 3}", (b * points + i) / 7, i, b * points + i) for i in range(points)]
            ledger.append(
                [make(E.BatchLogged, run_id=run_id, metrics=metrics, params=[E.Param(f"p{b}", str(b))])]
            )


def _create_experiment(ledger) -> None:
    ledger.append(
        [make(E.ExperimentCreated, experiment_id="1", name="e", artifact_location="a", creation_time=1)]
    )


def _same_tables(one, other) -> None:
    for table in ("runs", "params", "run_tags", "metrics", "latest_metrics", "events", "checkpoints"):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert one.execute(query).fetchall() == other.execute(query).fetchall(), table


def test_a_segment_of_few_events_but_many_points_is_applied_in_steps_of_bounded_items(tmp_path, monkeypatch):
    """Steps are bounded by items (events and their metric points), not by events: a segment of
    9 events holding 1,600 points, in row groups of ~100 items, is applied ~200 items at a time.
    Progress counts events and moves at each step; the tables are those of a one-step apply."""
    monkeypatch.setattr(ledger_module, "ROLL_CHUNK_ITEMS", 100)
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        _create_experiment(ledger)
        _log_points(ledger, runs=2, batches=4, points=200)
        ledger.roll()
    assert len(list_segments(open_store(tmp_path / "store"))) == 1
    whole = projections.connect(tmp_path / "store")
    monkeypatch.setattr(sources, "ITEMS_PER_STEP", 250)
    calls = []
    stepped = projections.connect(
        tmp_path / "store", progress=lambda done, total: calls.append((done, total))
    )
    done = [d for d, _ in calls]
    assert len(calls) >= 8 and done == sorted(set(done)) and calls[-1] == (11, 11), calls
    _same_tables(stepped, whole)
    assert stepped.execute("SELECT count(*) FROM metrics").fetchall() == [(1600,)]


def test_a_step_spans_segments_and_resumes_inside_a_row_group(tmp_path, monkeypatch):
    """Small segments share a step, up to the item bound; a catch-up that stopped inside a row
    group (here: at ``as_of_seq``) goes on from the next event and ends with the same tables."""
    monkeypatch.setattr(ledger_module, "ROLL_CHUNK_ITEMS", 100)
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        _create_experiment(ledger)
        _log_points(ledger, runs=1, batches=2, points=30, prefix="a")  # seqs 1-4: one row group
        ledger.roll()
        _log_points(ledger, runs=1, batches=2, points=30, prefix="b")  # 5-7
        ledger.roll()
        _log_points(ledger, runs=2, batches=3, points=150, prefix="c")  # 8-15: a row group per batch
        ledger.roll()
    store = open_store(tmp_path / "store")
    assert len(list_segments(store)) == 3
    whole = projections.connect(tmp_path / "store")
    monkeypatch.setattr(sources, "ITEMS_PER_STEP", 200)
    con = duckdb.connect()
    create_tables(con)
    catch_up(con, store, as_of_seq=2)
    assert sources.checkpoints(con) == {ledger.writer: 2}
    calls = []
    catch_up(con, store, progress=lambda done, total: calls.append((done, total)))
    # Seqs 3-7 in one step, then each row group of the third segment: a run and its first batch share one.
    assert [done for done, _ in calls] == [5, 7, 8, 9, 11, 12, 13] and calls[-1] == (13, 13)
    _same_tables(con, whole)


def test_row_groups_count_items_from_the_footer(tmp_path, monkeypatch):
    """Each row group's seq range and items (events plus list values) come from the footer; a
    segment written without statistics is one span of all its items."""
    monkeypatch.setattr(ledger_module, "ROLL_CHUNK_ITEMS", 100)
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        _create_experiment(ledger)
        _log_points(ledger, runs=1, batches=3, points=100)
        info = ledger.roll()
    store = open_store(tmp_path / "store")
    groups = sources.row_groups(store, info.path, info.first_seq, info.last_seq)
    assert [(g.first, g.last) for g in groups] == [(1, 3), (4, 4), (5, 5)]
    # Rows, plus per list column its values (an empty list is one null value): metrics, params,
    # and the 7 other list columns (tags, datasets, ...) empty in every event.
    assert [g.items for g in groups] == [3 + 102 + 3 + 7 * 3, 1 + 100 + 1 + 7, 1 + 100 + 1 + 7]
    table = pq.read_table(tmp_path / "store" / info.path)
    pq.write_table(table, tmp_path / "store" / info.path, write_statistics=False, row_group_size=1)
    assert sources.row_groups(store, info.path, info.first_seq, info.last_seq) == [
        sources.RowGroup(1, 5, sum(g.items for g in groups))
    ]
    assert projections.connect(tmp_path / "store").execute("SELECT count(*) FROM metrics").fetchall() == [
        (300,)
    ]
