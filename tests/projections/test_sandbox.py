"""The ad-hoc SQL sandbox reads the projection and nothing else."""

from __future__ import annotations

import os

import pytest
from trackledger.ledger import events as E
from trackledger.projections import InvalidQuery, QueryTimeout, QueryTooLarge, SqlLimits, experiments

from tests.projections.conftest import make


@pytest.fixture
def filled(log):
    log(make(E.ExperimentCreated, experiment_id="1", name="Churn", artifact_location="a", creation_time=1))


def test_reads_tables(projection, filled):
    assert projection.sql("SELECT name FROM experiments").to_pylist() == [{"name": "Churn"}]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY experiments TO '/tmp/x.csv'",
        "ATTACH '/tmp/x.duckdb'",
        "INSTALL httpfs",
        "SET threads = 1",
        "DELETE FROM experiments",
        "CREATE TABLE x (a INT)",
        "SELECT 1; SELECT 2",
        "SELECT * FROM read_parquet('memory://x.parquet')",
    ],
)
def test_refused(projection, filled, query):
    with pytest.raises(InvalidQuery):
        projection.sql(query)
    assert projection.query(experiments.experiment, "1")["name"] == "Churn"


def test_row_cap(projection, filled):
    result = projection.sql("SELECT * FROM range(100)", SqlLimits(max_rows=10))
    assert result.num_rows == 10 and result.schema.metadata[b"truncated"] == b"true"
    assert result.schema.metadata[b"truncated_by"] == b"rows"
    whole = projection.sql("SELECT * FROM range(10)", SqlLimits(max_rows=10))
    assert whole.num_rows == 10 and whole.schema.metadata[b"truncated"] == b"false"


def test_byte_cap_truncates_the_answer(projection, filled):
    """500 rows of 1 MB each were answered whole (500 MB); now the answer stops at the byte cap."""
    result = projection.sql(
        "SELECT repeat('x', 1000000) AS s FROM range(500)", SqlLimits(max_bytes=5_000_000)
    )
    assert 0 < result.num_rows <= 5 and result.nbytes <= 5_000_000
    assert result.schema.metadata[b"truncated_by"] == b"bytes"
    with pytest.raises(QueryTooLarge, match="byte cap"):
        projection.sql("SELECT repeat('x', 1000000) AS s", SqlLimits(max_bytes=100_000))


def test_memory_cap_stops_a_query_and_names_the_cap(projection, filled):
    """The cross join that took the server to 6 GB: the sandbox's memory cap stops it at once."""
    query = "SELECT count(*) FROM (SELECT DISTINCT a.range * b.range FROM range(100000) a, range(100000) b)"
    with pytest.raises(QueryTooLarge, match="memory cap of 16 MB"):
        projection.sql(query, SqlLimits(memory_bytes=16 * 1024 * 1024, timeout_s=60))


def test_settings_and_errors_name_no_server_path(projection, filled, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = projection.sql("SELECT name, value FROM duckdb_settings()", SqlLimits(max_rows=1000))
    text = repr(settings.to_pylist())
    for path in (str(tmp_path), os.path.expanduser("~"), os.getcwd()):
        assert path not in text
    shown = {row["name"]: row["value"] for row in settings.to_pylist()}
    assert shown["threads"] == "1" and shown["enable_external_access"] == "false"
    for query in ("SELECT * FROM 'relative.csv'", "SELECT * FROM duckdb_extensions()"):
        with pytest.raises(InvalidQuery) as refused:
            projection.sql(query)
        assert str(tmp_path) not in str(refused.value) and os.path.expanduser("~") not in str(refused.value)


def test_time_cap(projection, filled):
    with pytest.raises(QueryTimeout):
        projection.sql("SELECT count(*) FROM range(10000000000) a", SqlLimits(timeout_s=0.2))
