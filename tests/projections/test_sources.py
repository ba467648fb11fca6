"""Rebuilds read segments written before the newest columns existed."""

from __future__ import annotations

import pyarrow.parquet as pq
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.ledger.schema import events_to_table
from trackledger.ledger.segments import segment_relpath
from trackledger.projections import sources

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


def test_a_big_segment_is_applied_in_steps_that_count_events(tmp_path, monkeypatch):
    """Progress counts events, and a segment past EVENTS_PER_STEP moves it more than once; the
    tables are the same as when it is applied in one step."""
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        ledger.append(
            [make(E.ExperimentCreated, experiment_id="1", name="e", artifact_location="a", creation_time=1)]
        )
        ledger.append(
            [
                make(
                    E.RunCreated,
                    experiment_id="1",
                    run_id="r",
                    name="n",
                    user_id="u",
                    start_time=1,
                    artifact_uri="u",
                )
            ]
        )
        for step in range(5):
            ledger.append(
                [make(E.BatchLogged, run_id="r", metrics=[E.Metric("loss", step / 10, step, step)])]
            )
        ledger.roll()
    whole = projections.connect(tmp_path / "store")
    monkeypatch.setattr(sources, "EVENTS_PER_STEP", 3)
    calls = []
    stepped = projections.connect(
        tmp_path / "store", progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(3, 7), (6, 7), (7, 7)]
    for table in ("runs", "metrics", "latest_metrics", "events"):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert stepped.execute(query).fetchall() == whole.execute(query).fetchall(), table
