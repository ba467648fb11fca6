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
import pyarrow.parquet as pq
from trackledger.ledger.schema import SEGMENT_SCHEMA
from trackledger.ledger.segments import list_segments, parse_relpath
from trackledger.ledger.store import Store
from trackledger.projections.apply import apply_source
from trackledger.projections.statements import literal

# One transaction and one progress step holds about this many items (an event, and each value of
# its list columns: metric points, params, tags), whatever the segments: the apply statements'
# temp tables, DuckDB's transaction-local data and its read buffers grow with it (a 5M-point
# store caught up in one transaction peaked at ~1 GB). Row groups are the unit: a step holds
# at least one, and a segment's writer bounds its row groups (ROLL_CHUNK_ITEMS for the WAL roll).
ITEMS_PER_STEP = 1_000_000
SEGMENTS_PER_STEP = 16  # and at most this many segments: each costs a footer read per statement

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
    """Events of one segment past the checkpoints: seqs ``first..last`` of ``writer`` in the file
    at ``url``, holding about ``items`` items (see ``row_groups``)."""

    writer: str
    first: int
    last: int
    url: str
    items: int

    @property
    def events(self) -> int:
        return self.last - self.first + 1


class RowGroup(NamedTuple):
    first: int
    last: int
    items: int


def row_groups(store: Store, relpath: str, first: int, last: int) -> list[RowGroup]:
    """The seq range and items of each row group of a segment, from its footer alone: its events
    plus the values of their list columns (an empty list is one null value, so this bounds the
    items from above). A segment without seq statistics is one span ``first..last``."""
    with store.open(relpath) as f:
        meta = pq.ParquetFile(f).metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    seq = meta.schema.names.index("seq")
    stats = [group.column(seq).statistics for group in groups]
    found = [
        RowGroup(s.min, s.max, _items(group)) if s is not None and s.has_min_max else None
        for group, s in zip(groups, stats, strict=True)
    ]
    if None in found:
        return [RowGroup(first, last, sum(_items(group) for group in groups))]
    return found


def _items(group: pq.RowGroupMetaData) -> int:
    """A row group's rows plus, for each list column, its values (those of its widest leaf)."""
    values: dict[str, int] = {}
    for c in range(group.num_columns):
        column = group.column(c)
        name, _, rest = column.path_in_schema.partition(".")
        if rest.startswith("list."):
            values[name] = max(values.get(name, 0), column.num_values)
    return group.num_rows + sum(values.values())


def pending_segments(store: Store, done: dict[str, int], as_of_seq: int | None = None) -> list[Pending]:
    """The row groups of segments holding events past the checkpoints, in (writer, seq) order,
    each cut to its events past the checkpoint."""
    found = []
    for relpath in list_segments(store):
        writer, first, last = parse_relpath(relpath)
        after = done.get(writer, 0)
        if last <= after or (as_of_seq is not None and first > as_of_seq):
            continue
        url = store.url(relpath)
        for group in row_groups(store, relpath, first, last):
            if group.last > after and (as_of_seq is None or group.first <= as_of_seq):
                found.append(Pending(writer, max(group.first, after + 1), group.last, url, group.items))
    return found


def steps(pending: list[Pending]) -> Iterator[tuple[list[Pending], str]]:
    """The row groups of each transaction, with a condition on writer and seq that selects their
    events: row groups in order until ITEMS_PER_STEP items or SEGMENTS_PER_STEP segments."""
    batch: list[Pending] = []
    items = 0
    urls: set[str] = set()
    for group in pending:
        if batch and (items + group.items > ITEMS_PER_STEP or len(urls | {group.url}) > SEGMENTS_PER_STEP):
            yield batch, _selecting(batch)
            batch, items, urls = [], 0, set()
        batch.append(group)
        items += group.items
        urls.add(group.url)
    if batch:
        yield batch, _selecting(batch)


def _selecting(batch: list[Pending]) -> str:
    """The events of ``batch``: one seq range per writer, as its row groups follow each other
    (a writer's segments never share a seq)."""
    ranges: dict[str, tuple[int, int]] = {}
    for p in batch:
        first, last = ranges.get(p.writer, (p.first, p.last))
        ranges[p.writer] = (min(first, p.first), max(last, p.last))
    return " OR ".join(
        f"(writer = {literal(writer)} AND seq BETWEEN {first} AND {last})"
        for writer, (first, last) in ranges.items()
    )


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
        urls = ", ".join(literal(url) for url in dict.fromkeys(p.url for p in batch))
        source = f"SELECT * FROM ({_segments_relation(con, urls)}) WHERE {where} AND ({in_step})"
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
