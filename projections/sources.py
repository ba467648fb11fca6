"""Feeding events to the apply SQL from the store: Parquet segments, then the WAL tail.

Segments are read by DuckDB itself (``read_parquet``, union_by_name so that older segments
lacking newer columns still read, and columns no segment of a batch has read as null); the tail
arrives as an Arrow table. Both go through ``apply.apply_source``, so a rebuild runs exactly the
SQL of incremental apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import NamedTuple

import duckdb
import pyarrow as pa
from trackledger.ledger.schema import SEGMENT_SCHEMA
from trackledger.ledger.segments import list_segments, parse_relpath
from trackledger.ledger.store import Store
from trackledger.projections.apply import apply_source
from trackledger.projections.statements import literal

SEGMENTS_PER_STEP = 16  # one transaction and one progress step per this many segments...
EVENTS_PER_STEP = 50_000  # ...or per this many events of a bigger segment

Progress = Callable[[int, int], None]  # (events applied, events to apply)


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


def as_of_filter(as_of_seq: int | None, as_of_ts: int | None) -> str:
    """A WHERE condition on events, with integer literals: the apply source becomes a view, and
    views take no parameters."""
    where = []
    if as_of_seq is not None:
        where.append(f"seq <= {int(as_of_seq)}")
    if as_of_ts is not None:
        where.append(f"ts <= {int(as_of_ts)}")
    return " AND ".join(where) or "true"


def checkpoints(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT writer, last_seq FROM checkpoints").fetchall())


class Pending(NamedTuple):
    """The events of one segment past the checkpoints: seqs ``first..last`` in the file at ``url``."""

    first: int
    last: int
    url: str

    @property
    def events(self) -> int:
        return self.last - self.first + 1


def pending_segments(store: Store, done: dict[str, int], as_of_seq: int | None = None) -> list[Pending]:
    """Segments holding events past the checkpoints, in (writer, seq) order."""
    found = []
    for relpath in list_segments(store):
        writer, first, last = parse_relpath(relpath)
        if last > done.get(writer, 0) and (as_of_seq is None or first <= as_of_seq):
            found.append(Pending(max(first, done.get(writer, 0) + 1), last, store.url(relpath)))
    return found


def steps(segments: list[Pending]) -> Iterator[tuple[list[Pending], str]]:
    """The segments of each transaction, with a condition on seq: up to SEGMENTS_PER_STEP whole
    segments, or EVENTS_PER_STEP events of a bigger one (so that a big segment shows progress)."""
    batch: list[Pending] = []
    for segment in segments:
        if segment.events <= EVENTS_PER_STEP:
            batch.append(segment)
            if len(batch) == SEGMENTS_PER_STEP:
                yield batch, "true"
                batch = []
            continue
        if batch:
            yield batch, "true"
            batch = []
        for first in range(segment.first, segment.last + 1, EVENTS_PER_STEP):
            last = min(first + EVENTS_PER_STEP - 1, segment.last)
            yield [Pending(first, last, segment.url)], f"seq BETWEEN {first} AND {last}"
    if batch:
        yield batch, "true"


def register_store(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Let DuckDB read memory:// and s3:// stores through the store's fsspec filesystem."""
    if not store.is_local and type(store.fs).__name__ not in con.list_filesystems():
        con.register_filesystem(store.fs)


def apply_in_transaction(con: duckdb.DuckDBPyConnection, source: str, *, copy: bool = True) -> int:
    con.execute("BEGIN TRANSACTION")
    try:
        count = apply_source(con, source, copy=copy)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return count


def apply_segments(con, segments, where: str = "true", progress: Progress | None = None) -> int:
    applied = done = 0
    total = sum(segment.events for segment in segments)
    for batch, in_step in steps(segments):
        urls = ", ".join(literal(segment.url) for segment in batch)
        source = f"SELECT * FROM ({_segments_relation(con, urls)}) WHERE {where} AND {in_step}"
        # Statements read the segments through a view: each reads only its columns from Parquet.
        applied += apply_in_transaction(con, source, copy=False)
        done += sum(segment.events for segment in batch)
        if progress:
            progress(done, total)
    return applied


def apply_table(con, table: pa.Table, where: str = "true") -> int:
    if table.num_rows == 0:
        return 0
    con.register("incoming_events", table)
    try:
        return apply_in_transaction(con, f"SELECT * FROM incoming_events WHERE {where}")
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
    where = as_of_filter(as_of_seq, as_of_ts)
    register_store(con, store)
    applied = 0
    for _attempt in range(5):
        segments = pending_segments(store, checkpoints(con), as_of_seq)
        applied += apply_segments(con, segments, where, progress)
        table = tail() if tail else None
        if table is None or table.num_rows == 0:
            return applied
        done = checkpoints(con)
        con.register("tail_events", table)
        try:
            firsts = con.execute(
                f"SELECT writer, min(seq) FROM tail_events WHERE {where} GROUP BY writer"
            ).fetchall()
        finally:
            con.unregister("tail_events")
        if all(first <= done.get(writer, 0) + 1 for writer, first in firsts):
            return applied + apply_table(con, table, where)
    raise RuntimeError("the WAL tail kept moving into new segments while catching up; try again")
