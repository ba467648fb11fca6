"""Reads leave nothing open: DuckDB 2 refuses ``sql()`` on a connection holding an unfinished
result, and server threads are reused, so one read must never spoil the next on the same thread."""

from __future__ import annotations

import duckdb
import pytest
from trackledger.ledger import events as E
from trackledger.projections import experiments, history, logged_models, registry, runs
from trackledger.projections.schema import create_tables

from tests.projections.conftest import make


def test_single_row_reads_then_arrow_read_on_the_same_thread(projection, log):
    log(
        make(E.ExperimentCreated, experiment_id="1", name="exp", artifact_location="a", creation_time=1),
        make(
            E.RunCreated,
            experiment_id="1",
            run_id="r1",
            name="r",
            user_id="u",
            start_time=1,
            artifact_uri="u",
        ),
        make(E.BatchLogged, experiment_id="1", run_id="r1", metrics=[E.Metric("m", 1.0, 1, 0)]),
        make(E.RegisteredModelCreated, name="rm"),
        make(E.ModelVersionCreated, name="rm", version=1, source="s"),
        make(E.RegisteredModelAliasSet, name="rm", key="champion", version=1),
    )
    reads = [
        lambda: projection.query(experiments.experiment, "1"),
        lambda: projection.query(experiments.experiment_by_name, "exp"),
        lambda: projection.query(logged_models.logged_model, "nope"),
        lambda: projection.query(registry.registered_model, "rm"),
        lambda: projection.query(registry.model_version, "rm", 1),
        lambda: projection.query(registry.model_version_by_alias, "rm", "champion"),
        lambda: projection.query(registry.latest_versions, "rm"),
        lambda: projection.query(registry.search_registered_models),
        lambda: projection.query(registry.search_model_versions),
        lambda: projection.query(runs.run, "r1"),
    ]
    for read in reads:
        assert read() is not None or read is reads[2]
        # an Arrow read (con.sql) right after, on the same thread
        assert projection.query(history.metric_history_arrow, ["r1"]).num_rows == 1
        assert projection.read("SELECT count(*) FROM runs") == [(1,)]


def test_entity_reads_complete_their_results_on_a_plain_connection():
    con = duckdb.connect()
    create_tables(con)
    con.execute("INSERT INTO experiments VALUES ('1', 'exp', 'a', 'active', 1, 1, 'u')")
    con.execute("INSERT INTO registered_models VALUES ('k', 'rm', NULL, 1, 1, 'u')")
    con.execute("INSERT INTO model_versions VALUES ('k', 1, 's', NULL, NULL, NULL, 'None', 1, 1, 'u', false)")
    con.execute("INSERT INTO registered_model_aliases VALUES ('k', 'a', 1)")
    for read in (
        lambda: experiments.experiment(con, "1"),
        lambda: registry.registered_model(con, "rm"),
        lambda: registry.model_version_by_alias(con, "rm", "a"),
        lambda: registry.latest_versions(con, "rm"),
        lambda: registry.search_registered_models(con),
        lambda: registry.search_model_versions(con),
        lambda: logged_models.logged_model(con, "none"),
    ):
        read()
        assert con.sql("SELECT count(*) FROM experiments").fetchall() == [(1,)]


def test_read_takes_one_select_only(projection):
    assert projection.read_records("SELECT ? AS a, 2 AS b", [1]) == [{"a": 1, "b": 2}]
    for bad in ("DELETE FROM runs", "SELECT 1; SELECT 2", "CREATE TABLE x (a INT)"):
        with pytest.raises(ValueError):
            projection.read(bad)
