"""Ad-hoc read-only SQL over the projection, in a DuckDB instance of its own.

``enable_external_access = false`` is database-wide, and the live projection must keep
reading Parquet for rebuilds, so user SQL never runs there. Instead each query gets a fresh
in-memory instance, external access disabled and its configuration locked, in which the
projection tables the query names are registered as Arrow snapshots taken in one read
transaction of the live database. A file-level ATTACH ... READ_ONLY is not an option: the
server holds the file open read-write in this process. Only one SELECT statement is accepted.

Caps (``SqlLimits``): DuckDB's memory and threads (an operator past the memory cap fails: no
temporary directory, so nothing spills to disk), the time (the query is interrupted), and the
answer's rows and bytes. The answer is read from DuckDB in small Arrow batches and handed to an
``Answer``, which encodes it as it goes (Arrow, or the HTTP answer's JSON or CSV) and counts the
bytes it has taken: the bytes cap is on the answer as it will be sent, and what is held in this
process is the capped answer plus one batch in flight. The answer stops at the first row past
either cap and says it was truncated; a first row past the bytes cap alone is refused. The sandbox
names no server path: its home, extension and secret directories are a neutral ``/sandbox``, and
the allowed-paths list DuckDB derives from the working directory is emptied before external access
is turned off.

For a reader with a ``Scope`` (a non-admin with auth on), each snapshot holds only the rows they
may see (``scope.table_filters``): the sandbox instance has nothing else in it, so no query,
however crafted, can reach a row outside the reader's scope. Private tables (hashes) are never
registered.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Protocol

import duckdb
import pyarrow as pa
from trackledger.projections.filters import InvalidQuery
from trackledger.projections.schema import PRIVATE_COLUMNS, PRIVATE_TABLES, TABLES
from trackledger.projections.scope import Scope, table_filters

NEUTRAL_DIRECTORY = "/sandbox"  # shown by duckdb_settings() and in errors instead of a server path
# Rows per Arrow batch read from DuckDB: the most held in this process beyond the bytes cap
# (1-row batches would take 7 times as long to read 10,000 small rows).
BATCH_ROWS = 8


@dataclass(frozen=True)
class SqlLimits:
    max_rows: int = 10_000
    max_bytes: int = 32 * 1024 * 1024
    timeout_s: float = 5.0
    memory_bytes: int = 256 * 1024 * 1024
    threads: int = 1


DEFAULT_LIMITS = SqlLimits()


class QueryTimeout(InvalidQuery):
    """The ad-hoc query ran longer than its time limit."""


class QueryTooLarge(InvalidQuery):
    """The ad-hoc query needed more memory than the sandbox has, or one row passed the byte cap."""


def _open_sandbox(limits: SqlLimits) -> duckdb.DuckDBPyConnection:
    sandbox = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "temp_directory": "",
            "memory_limit": f"{max(1, limits.memory_bytes // 1024)}KiB",
            "threads": limits.threads,
        },
    )
    for statement in (
        f"SET home_directory = '{NEUTRAL_DIRECTORY}'",
        f"SET extension_directory = '{NEUTRAL_DIRECTORY}'",
        f"SET secret_directory = '{NEUTRAL_DIRECTORY}'",
        "SET allowed_paths = []",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        sandbox.execute(statement)
    return sandbox


def _single_select(sandbox: duckdb.DuckDBPyConnection, query: str) -> None:
    try:
        statements = sandbox.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidQuery(f"SQL error: {_without_paths(exc)}") from exc
    if len(statements) != 1:
        raise InvalidQuery(f"expected exactly one SQL statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidQuery(f"only SELECT queries are allowed, not {statements[0].type.name}")


def _snapshot(db: duckdb.DuckDBPyConnection, filters: dict[str, tuple[str, list]]) -> dict[str, pa.Table]:
    """The named tables (their rows matching each condition) as Arrow, all read in one
    transaction (a consistent snapshot)."""
    cursor = db.cursor()
    try:
        cursor.execute("BEGIN TRANSACTION")
        tables = {
            name: cursor.sql(f"{_select_all(name)} WHERE {where}", params=params).to_arrow_table()
            for name, (where, params) in filters.items()
        }
        cursor.execute("COMMIT")
        return tables
    finally:
        cursor.close()


def _select_all(name: str) -> str:
    private = PRIVATE_COLUMNS.get(name)
    return f"SELECT * EXCLUDE ({', '.join(private)}) FROM {name}" if private else f"SELECT * FROM {name}"


def _without_paths(exc: Exception) -> str:
    """DuckDB's message, with the server's working directory (relative file names are shown
    resolved against it) replaced by the neutral one."""
    return str(exc).replace(os.getcwd().rstrip("/") + "/", NEUTRAL_DIRECTORY + "/")


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


class Answer(Protocol):
    """Where the sandbox puts the answer's rows, encoded as they come; ``size`` is its bytes so far."""

    size: int

    def start(self, schema: pa.Schema) -> None:
        """Called once, before any rows, with the answer's columns."""

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        """Take the longest prefix of ``batch`` whose encoding fits in ``budget`` more bytes;
        return how many rows that is."""


def rows_within(batch: pa.RecordBatch, budget: int, size_of) -> int:
    """How many of the batch's first rows fit in ``budget`` bytes, ``size_of`` measuring a slice."""
    if size_of(batch) <= budget:
        return batch.num_rows
    fitting = 0
    while fitting < batch.num_rows and size_of(batch.slice(0, fitting + 1)) <= budget:
        fitting += 1
    return fitting


class ArrowAnswer:
    """The answer as an Arrow table; its size is its Arrow data's."""

    def __init__(self) -> None:
        self.size = 0
        self._schema: pa.Schema | None = None
        self._batches: list[pa.RecordBatch] = []

    def start(self, schema: pa.Schema) -> None:
        self._schema = schema

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        taken = rows_within(batch, budget, lambda rows: rows.nbytes)
        self._batches.append(batch.slice(0, taken))
        self.size += self._batches[-1].nbytes
        return taken

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self._batches, self._schema)


def _read_capped(relation: duckdb.DuckDBPyRelation, limits: SqlLimits, answer: Answer) -> str | None:
    """Hand the answer's rows to ``answer`` up to the row and byte caps; which cap cut it short
    (None: complete)."""
    reader = relation.to_arrow_reader(BATCH_ROWS)
    answer.start(reader.schema)
    rows = 0
    for batch in reader:
        cut_by = None
        if rows + batch.num_rows > limits.max_rows:
            batch, cut_by = batch.slice(0, limits.max_rows - rows), "rows"
        taken = answer.add(batch, limits.max_bytes - answer.size)
        rows += taken
        if taken < batch.num_rows:
            if rows == 0:
                raise QueryTooLarge(
                    f"the first row is larger than the answer's byte cap of {_megabytes(limits.max_bytes)}"
                )
            return "bytes"
        if cut_by:
            return cut_by
    return None


def run_sandboxed(
    db: duckdb.DuckDBPyConnection,
    query: str,
    answer: Answer,
    limits: SqlLimits = DEFAULT_LIMITS,
    scope: Scope | None = None,
) -> str | None:
    """Put the result of one SELECT in ``answer`` within ``limits``; return which cap (``rows``
    or ``bytes``) cut it short, or None. With a ``scope``, over only the rows it may see."""
    sandbox = _open_sandbox(limits)
    timer = threading.Timer(limits.timeout_s, sandbox.interrupt)
    try:
        _single_select(sandbox, query)
        try:
            referenced = sandbox.get_table_names(query)
        except duckdb.Error as exc:
            raise InvalidQuery(f"SQL error: {_without_paths(exc)}") from exc
        timer.start()
        visible = table_filters(scope) if scope is not None else dict.fromkeys(TABLES, ("true", []))
        names = sorted(referenced & (visible.keys() - PRIVATE_TABLES))
        for name, table in _snapshot(db, {name: visible[name] for name in names}).items():
            sandbox.register(name, table)
        try:
            return _read_capped(sandbox.sql(query), limits, answer)
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the query ran longer than {limits.timeout_s:g} s and was stopped") from exc
        except duckdb.OutOfMemoryException as exc:
            raise QueryTooLarge(
                f"the query needed more than the SQL memory cap of {_megabytes(limits.memory_bytes)}"
            ) from exc
        except duckdb.Error as exc:
            raise InvalidQuery(f"SQL error: {_without_paths(exc)}") from exc
    finally:
        timer.cancel()
        sandbox.close()
