"""State as of a point in the ledger, and the offline entry point for notebooks and the CLI.

Both build a fresh in-memory DuckDB from the store with the same SQL as the live projection;
the live projection file is never opened or touched.
"""

from __future__ import annotations

import os

import duckdb
from trackledger.ledger.schema import events_to_table
from trackledger.ledger.store import open_store
from trackledger.ledger.wal import read_wal_dir
from trackledger.projections.schema import create_tables
from trackledger.projections.sources import Progress, catch_up


def connect(
    store_url: str | os.PathLike,
    storage_options: dict | None = None,
    as_of_seq: int | None = None,
    as_of_ts: int | None = None,
    *,
    state_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every projection table built from the store.

    ``as_of_seq`` / ``as_of_ts`` (epoch ms) stop at that point of the ledger. ``state_dir``
    also reads the unrolled WAL tail of a server's state directory (read-only).

        from trackledger import projections
        con = projections.connect("./trackledger-data")
        con.sql("SELECT key, avg(value) FROM latest_metrics GROUP BY key").show()
    """
    store = open_store(store_url, storage_options)
    con = duckdb.connect(":memory:")
    create_tables(con)
    tail = None
    if state_dir is not None:
        wal_dir = os.path.join(os.fspath(state_dir), "wal")
        tail = lambda: events_to_table(list(read_wal_dir(wal_dir)))  # noqa: E731
    catch_up(con, store, tail, as_of_seq=as_of_seq, as_of_ts=as_of_ts, progress=progress)
    return con


def as_of(
    store_url: str | os.PathLike,
    *,
    seq: int | None = None,
    ts: int | None = None,
    storage_options: dict | None = None,
) -> duckdb.DuckDBPyConnection:
    """The projection as it was at ``seq`` or at time ``ts`` (epoch ms), in memory."""
    if seq is None and ts is None:
        raise ValueError("as_of needs seq or ts")
    return connect(store_url, storage_options, as_of_seq=seq, as_of_ts=ts)
