"""The process reading SQLite metric points: the fields it fills are the ledger's, and it starts
light (it is on the import's critical path until its first chunk)."""

from __future__ import annotations

import json
import subprocess
import sys

from trackledger.importer.sqlite_points_reader import LINK_FIELDS, POINT_FIELDS
from trackledger.ledger.schema import METRIC_TYPE


def test_the_reader_fills_fields_of_the_ledgers_metric_type():
    assert list(POINT_FIELDS + LINK_FIELDS) == list(METRIC_TYPE)


def test_the_reader_imports_neither_the_ledger_nor_pandas():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, trackledger.importer.sqlite_points_reader\n"
            "print(json.dumps(list(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    heavy = (
        "pandas",
        "fsspec",
        "trackledger.ledger",
        "trackledger.importer.records",
        "adbc_driver_manager.dbapi",
    )
    assert [m for m in json.loads(loaded.stdout) if m.startswith(heavy)] == []
