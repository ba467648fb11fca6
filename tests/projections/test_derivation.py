"""A projection file keeps the digest of the code that derived it: a file of another version is
derived again from the ledger when opened, and a file of this version is opened as it is."""

from __future__ import annotations

import duckdb
import pytest
from trackledger.ledger import events as E
from trackledger.projections import Projection
from trackledger.projections.projection import DERIVATION_DIGEST

from tests.projections.conftest import make


def projection_file(ledger, path) -> None:
    """A file holding one experiment, whose name is then changed behind the projection's back:
    the name says whether the file was derived again."""
    projection = Projection(ledger, path)
    created = make(E.ExperimentCreated, experiment_id="1", name="e1", artifact_location="a", creation_time=1)
    projection.submit(ledger.append([created]))
    projection.close()
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE experiments SET name = 'changed'")


def names(projection: Projection) -> list[str]:
    return projection.sql("SELECT name FROM experiments").column("name").to_pylist()


def test_a_file_of_this_derivation_is_opened_as_it_is(ledger, tmp_path):
    path = tmp_path / "projection.duckdb"
    projection_file(ledger, path)
    projection = Projection(ledger, path)
    try:
        assert names(projection) == ["changed"]
    finally:
        projection.close()


@pytest.mark.parametrize("digest", ["another version", None], ids=["other-digest", "no-digest"])
def test_a_file_of_another_derivation_is_derived_again(ledger, tmp_path, digest):
    path = tmp_path / "projection.duckdb"
    projection_file(ledger, path)
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM derivation")
        if digest is not None:
            con.execute("INSERT INTO derivation VALUES (?)", [digest])
    projection = Projection(ledger, path)
    try:
        assert names(projection) == ["e1"]
        assert projection.sql("SELECT digest FROM derivation").column("digest").to_pylist() == [
            DERIVATION_DIGEST
        ]
    finally:
        projection.close()
