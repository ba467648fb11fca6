"""Ad-hoc read-only SQL over the projection, in a DuckDB instance of its own.

``enable_external_access = false`` is database-wide, and the live projection must keep
reading Parquet for rebuilds, so user SQL never runs there. Instead each query gets a fresh
in-memory instance, created with external access disabled and its configuration locked, in
which the projection tables the query names are registered as Arrow snapshots taken in one
read transaction of the live database. A file-level ATTACH ... READ_ONLY is not an option: the
server holds the file open read-write in this process. Only one SELECT statement is accepted;
results are capped in rows and the query is interrupted after ``timeout_s``.
"""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa
from trackledger.projections.filters import InvalidQuery
from trackledger.projections.schema import TABLES

SANDBOX_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


class QueryTimeout(InvalidQuery):
    """The ad-hoc query ran longer than its time limit."""


def _single_select(sandbox: duckdb.DuckDBPyConnection, query: str) -> None:
    try:
        statements = sandbox.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidQuery(f"SQL error: {exc}") from exc
    if len(statements) != 1:
        raise InvalidQuery(f"expected exactly one SQL statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidQuery(f"only SELECT queries are allowed, not {statements[0].type.name}")


def _snapshot(db: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, pa.Table]:
    """The named tables as Arrow, all read in one transaction (a consistent snapshot)."""
    cursor = db.cursor()
    try:
        cursor.execute("BEGIN TRANSACTION")
        tables = {name: cursor.sql(f"SELECT * FROM {name}").to_arrow_table() for name in names}
        cursor.execute("COMMIT")
        return tables
    finally:
        cursor.close()


def run_sandboxed(
    db: duckdb.DuckDBPyConnection, query: str, *, max_rows: int = 10_000, timeout_s: float = 5.0
) -> pa.Table:
    """The result of one SELECT, at most ``max_rows`` rows (schema metadata ``truncated``)."""
    sandbox = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
    timer = threading.Timer(timeout_s, sandbox.interrupt)
    try:
        _single_select(sandbox, query)
        try:
            referenced = sandbox.get_table_names(query)
        except duckdb.Error as exc:
            raise InvalidQuery(f"SQL error: {exc}") from exc
        timer.start()
        for name, table in _snapshot(db, sorted(referenced & TABLES.keys())).items():
            sandbox.register(name, table)
        try:
            result = sandbox.sql(query).limit(max_rows + 1).to_arrow_table()
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was stopped") from exc
        except duckdb.Error as exc:
            raise InvalidQuery(f"SQL error: {exc}") from exc
    finally:
        timer.cancel()
        sandbox.close()
    truncated = result.num_rows > max_rows
    result = result.slice(0, max_rows)
    return result.replace_schema_metadata({"truncated": "true" if truncated else "false"})
