"""The ad-hoc SQL sandbox reads the projection and nothing else."""

from __future__ import annotations

import pytest
from trackledger.ledger import events as E
from trackledger.projections import InvalidQuery, QueryTimeout

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
    assert projection.experiment("1")["name"] == "Churn"


def test_row_cap(projection, filled):
    result = projection.sql("SELECT * FROM range(100)", max_rows=10)
    assert result.num_rows == 10 and result.schema.metadata[b"truncated"] == b"true"


def test_time_cap(projection, filled):
    with pytest.raises(QueryTimeout):
        projection.sql("SELECT count(*) FROM range(10000000000) a", timeout_s=0.2)
