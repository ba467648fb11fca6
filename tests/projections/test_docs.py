"""Every projection table and column is documented in README.md."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from trackledger.projections.schema import create_tables

ROOT = Path(__file__).resolve().parents[2]


def documented_columns() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text()
    tables: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"#{3,5} (\w+)\s*$", line)
        if heading:
            current = heading.group(1)
            continue
        row = re.match(r"\| (\w+) \|", line)
        if current and row and row.group(1) != "column":
            tables.setdefault(current, set()).add(row.group(1))
    return tables


def test_every_table_and_column_is_documented():
    con = duckdb.connect()
    create_tables(con)
    actual: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal AND schema_name = 'main'"
    ).fetchall():
        actual.setdefault(table, set()).add(column)
    docs = documented_columns()
    missing = {
        t: sorted(cols - docs.get(t, set())) for t, cols in actual.items() if cols - docs.get(t, set())
    }
    assert not missing, f"undocumented tables/columns: {missing}"
