"""Rows off a cursor, read to their end: DuckDB 2 refuses further ``sql()`` on a connection whose
last ``execute()`` result is unfinished (as ``fetchone()`` leaves it)."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()):
    """The first row or None."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None
