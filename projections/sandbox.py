"""Ad-hoc read-only SQL over the projection, in a DuckDB instance of its own.

``enable_external_access = false`` is database-wide, and the live projection must keep
reading Parquet for rebuilds, so user SQL never runs there. Instead each query gets a fresh
in-memory instance, external access disabled and its configuration locked, in which the
projection tables the query names are registered as Arrow snapshots taken in one read
transaction of the live database. A file-level ATTACH ... READ_ONLY is not an option: the
server holds the file open read-write in this process. Only one SELECT statement is accepted.

Caps (``SqlLimits``): DuckDB's memory and threads (an operator past the memory cap fails: no
temporary directory, so nothing spills to disk), the time (the query is interrupted), and the
answer's rows and bytes (read in small Arrow batches, the answer stops at the first batch past
either cap and says it was truncated). The sandbox names no server path: its home, extension and
secret directories are a neutral ``/sandbox``, and the allowed-paths list DuckDB derives from the
working directory is emptied before external access is turned off.

For a reader with a ``Scope`` (a non-admin with auth on), each snapshot holds only the rows they
may see (``scope.table_filters``): the sandbox instance has nothing else in it, so no query,
however crafted, can reach a row outside the reader's scope. Private tables (hashes) are never
registered.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from trackledger.projections.filters import InvalidQuery
from trackledger.projections.schema import PRIVATE_COLUMNS, PRIVATE_TABLES, TABLES
from trackledger.projections.scope import Scope, table_filters

NEUTRAL_DIRECTORY = "/sandbox"  # shown by duckdb_settings() and in errors instead of a server path
BATCH_ROWS = 64  # rows per Arrow batch read from the answer: small, so the byte cap is met closely


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


def _rows_within(batch: pa.RecordBatch, budget: int) -> int:
    """How many of the batch's first rows fit in ``budget`` bytes."""
    fitting = 0
    while fitting < batch.num_rows and batch.slice(0, fitting + 1).nbytes <= budget:
        fitting += 1
    return fitting


def _read_capped(relation: duckdb.DuckDBPyRelation, limits: SqlLimits) -> tuple[pa.Table, str | None]:
    """The answer up to the row and byte caps, and which cap cut it short (None: complete)."""
    reader = relation.to_arrow_reader(BATCH_ROWS)
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in reader:
        if rows + batch.num_rows > limits.max_rows:
            batches.append(batch.slice(0, limits.max_rows - rows))
            return pa.Table.from_batches(batches, reader.schema), "rows"
        if size + batch.nbytes > limits.max_bytes:
            fitting = _rows_within(batch, limits.max_bytes - size)
            if rows + fitting == 0:
                raise QueryTooLarge(
                    f"the first row is larger than the answer's byte cap of {_megabytes(limits.max_bytes)}"
                )
            batches.append(batch.slice(0, fitting))
            return pa.Table.from_batches(batches, reader.schema), "bytes"
        batches.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
    return pa.Table.from_batches(batches, reader.schema), None


def run_sandboxed(
    db: duckdb.DuckDBPyConnection, query: str, limits: SqlLimits = DEFAULT_LIMITS, scope: Scope | None = None
) -> pa.Table:
    """The result of one SELECT within ``limits``; schema metadata ``truncated`` says whether
    a cap cut the answer short, and ``truncated_by`` which one (``rows`` or ``bytes``). With a
    ``scope``, over only the rows it may see."""
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
            result, cut_by = _read_capped(sandbox.sql(query), limits)
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
    metadata = {"truncated": "true" if cut_by else "false"}
    if cut_by:
        metadata["truncated_by"] = cut_by
    return result.replace_schema_metadata(metadata)
