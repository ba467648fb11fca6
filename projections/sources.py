"""Feeding events to the apply SQL from the store: Parquet segments, then the WAL tail.

Segments are read by DuckDB itself (``read_parquet``, union_by_name so that older segments
lacking newer columns still read, and columns no segment of a batch has read as null); the tail
arrives as an Arrow table. Both go through ``apply.apply_source``, so a rebuild runs exactly the
SQL of incremental apply.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import duckdb
import pyarrow as pa
from trackledger.ledger.schema import SEGMENT_SCHEMA
from trackledger.ledger.segments import list_segments, parse_relpath
from trackledger.ledger.store import Store
from trackledger.projections.apply import apply_source

SEGMENTS_PER_BATCH = 16  # one transaction and one progress step per this many segments

Progress = Callable[[int, int], None]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@cache
def _column_types() -> dict[str, str]:
    """Every segment column and its DuckDB type."""
    con = duckdb.connect()
    try:
        con.register("segment_schema", SEGMENT_SCHEMA.empty_table())
        return {row[0]: row[1] for row in con.execute("DESCRIBE SELECT * FROM segment_schema").fetchall()}
    finally:
        con.close()


def _segments_relation(con: duckdb.DuckDBPyConnection, urls: str) -> str:
    """A SELECT of segments with every column of SEGMENT_SCHEMA: union_by_name fills a column some
    segments lack, but when none of them has it (all written before it existed) the apply
    statements that name it would not bind, so it is added as null."""
    source = f"read_parquet([{urls}], union_by_name = true)"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    missing = [f'NULL::{kind} AS "{name}"' for name, kind in _column_types().items() if name not in present]
    return f"SELECT {', '.join(['*', *missing])} FROM {source}"


def as_of_filter(as_of_seq: int | None, as_of_ts: int | None) -> tuple[str, list]:
    """A WHERE condition on events (integer literals: the apply source becomes a view, and views
    take no parameters) and its parameters (none)."""
    where = []
    if as_of_seq is not None:
        where.append(f"seq <= {int(as_of_seq)}")
    if as_of_ts is not None:
        where.append(f"ts <= {int(as_of_ts)}")
    return " AND ".join(where) or "true", []


def checkpoints(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT writer, last_seq FROM checkpoints").fetchall())


def pending_segments(
    store: Store, done: dict[str, int], as_of_seq: int | None = None
) -> list[tuple[str, int, str]]:
    """(writer, last_seq, url) of segments holding events past the checkpoints, in (writer, seq) order."""
    found = []
    for relpath in list_segments(store):
        writer, first, last = parse_relpath(relpath)
        if last > done.get(writer, 0) and (as_of_seq is None or first <= as_of_seq):
            found.append((writer, last, store.url(relpath)))
    return found


def register_store(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Let DuckDB read memory:// and s3:// stores through the store's fsspec filesystem."""
    if not store.is_local and type(store.fs).__name__ not in con.list_filesystems():
        con.register_filesystem(store.fs)


def apply_in_transaction(
    con: duckdb.DuckDBPyConnection, source: str, params: list, *, copy: bool = True
) -> int:
    con.execute("BEGIN TRANSACTION")
    try:
        count = apply_source(con, source, params, copy=copy)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return count


def apply_segments(
    con, segments, where: str = "true", params: list | None = None, progress: Progress | None = None
) -> int:
    applied = 0
    for start in range(0, len(segments), SEGMENTS_PER_BATCH):
        urls = ", ".join(_quote(url) for _w, _l, url in segments[start : start + SEGMENTS_PER_BATCH])
        source = f"SELECT * FROM ({_segments_relation(con, urls)}) WHERE {where}"
        # Statements read the segments through a view: each reads only its columns from Parquet.
        applied += apply_in_transaction(con, source, params or [], copy=False)
        if progress:
            progress(min(start + SEGMENTS_PER_BATCH, len(segments)), len(segments))
    return applied


def apply_table(con, table: pa.Table, where: str = "true", params: list | None = None) -> int:
    if table.num_rows == 0:
        return 0
    con.register("incoming_events", table)
    try:
        return apply_in_transaction(con, f"SELECT * FROM incoming_events WHERE {where}", params or [])
    finally:
        con.unregister("incoming_events")


def catch_up(
    con,
    store: Store,
    tail: Callable[[], pa.Table] | None = None,
    *,
    as_of_seq=None,
    as_of_ts=None,
    progress: Progress | None = None,
) -> int:
    """Apply every event past the checkpoints: segments, then the tail from ``tail()``.

    A segment roll between listing segments and reading the tail would hide events, so
    when the tail does not start right after what was applied, segments are listed again.
    """
    where, params = as_of_filter(as_of_seq, as_of_ts)
    register_store(con, store)
    applied = 0
    for _attempt in range(5):
        segments = pending_segments(store, checkpoints(con), as_of_seq)
        applied += apply_segments(con, segments, where, params, progress)
        table = tail() if tail else None
        if table is None or table.num_rows == 0:
            return applied
        done = checkpoints(con)
        con.register("tail_events", table)
        try:
            firsts = con.execute(
                f"SELECT writer, min(seq) FROM tail_events WHERE {where} GROUP BY writer", params
            ).fetchall()
        finally:
            con.unregister("tail_events")
        if all(first <= done.get(writer, 0) + 1 for writer, first in firsts):
            return applied + apply_table(con, table, where, params)
    raise RuntimeError("the WAL tail kept moving into new segments while catching up; try again")
