"""Rebuilds read segments written before the newest columns existed."""

from __future__ import annotations

import pyarrow.parquet as pq

import projections
from ledger import events as E
from ledger.schema import events_to_table
from ledger.segments import segment_relpath
from tests.projections.conftest import make


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
    stamped = [
        type(e)(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": i + 1, "writer": "w"})
        for i, e in enumerate(events)
    ]
    # As written before inputs and outputs were logged: the audit statement reads both columns.
    table = events_to_table(stamped).drop_columns(["datasets", "models"])
    path = tmp_path / segment_relpath("w", 1, len(stamped))
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    con = projections.connect(tmp_path)
    assert con.execute("SELECT run_id, key, value FROM params").fetchall() == [("r", "p", "1")]
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(3,)]
