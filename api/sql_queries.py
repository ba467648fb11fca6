"""``POST /api/sql``: read-only ad-hoc SQL over the projection, capped in memory, threads, time,
rows and bytes."""

from __future__ import annotations

import io

import msgspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from starlette.requests import Request
from starlette.responses import Response
from trackledger.api import protocol
from trackledger.api.auth.guard import scope_of
from trackledger.api.errors import MlflowError, invalid, missing
from trackledger.api.http import body_as
from trackledger.api.threads import blocking, read_after_writes
from trackledger.projections import SqlLimits


def _truncated_by(table: pa.Table) -> str | None:
    """Which cap (rows or bytes) cut the answer short, if one did."""
    cut_by = (table.schema.metadata or {}).get(b"truncated_by")
    return cut_by.decode() if cut_by else None


def _table_json(table: pa.Table) -> bytes:
    rows = [list(r.values()) for r in table.to_pylist()]
    body = {
        "columns": table.column_names,
        "types": [str(t) for t in table.schema.types],
        "rows": rows,
        "row_count": table.num_rows,
        "truncated": _truncated_by(table) is not None,
    }
    if cut_by := _truncated_by(table):
        body["truncated_by"] = cut_by
    return msgspec.json.encode(body, enc_hook=str)


def sql_limits(settings) -> SqlLimits:
    return SqlLimits(
        max_rows=settings.sql_max_rows,
        max_bytes=settings.sql_max_bytes,
        timeout_s=settings.sql_timeout_s,
        memory_bytes=settings.sql_memory_mb * 1024 * 1024,
        threads=settings.sql_threads,
    )


async def sql(ctx, request: Request):
    """``POST /api/sql {"query", "format": "json"|"csv"|"parquet"}``: read-only, capped in memory,
    threads, time, rows and bytes; at most ``sql_max_concurrent`` queries run at once, one more is
    refused at once (429, which clients retry later)."""
    req = await body_as(request, protocol.SqlQuery)
    if not req.query or not req.query.strip():
        raise missing("query")
    if req.format not in ("json", "csv", "parquet"):
        raise invalid(f"Unknown format '{req.format}': use json, csv or parquet")
    settings = ctx.settings
    limits = sql_limits(settings)
    scope = scope_of(ctx, request)  # a non-admin queries snapshots of only the rows they may read

    def run() -> pa.Table:
        if not ctx.sql_slots.acquire(blocking=False):
            raise MlflowError(
                f"Query refused: {settings.sql_max_concurrent} SQL queries are running, the cap of "
                "concurrent queries; try again shortly",
                "REQUEST_LIMIT_EXCEEDED",
            )
        try:
            return ctx.projection.sql(req.query, limits, scope)
        except Exception as exc:  # InvalidQuery, DuckDB errors, caps reached: all the caller's query
            raise invalid(f"Query refused: {exc}") from None
        finally:
            ctx.sql_slots.release()

    table = await read_after_writes(ctx, run)
    if req.format == "json":
        return Response(await blocking(_table_json, table), media_type="application/json")
    headers = {"x-trackledger-truncated": _truncated_by(table) or "false"}
    sink = io.BytesIO()
    if req.format == "csv":
        await blocking(pacsv.write_csv, table, sink)
        return Response(sink.getvalue(), media_type="text/csv", headers=headers)
    await blocking(pq.write_table, table, sink)
    return Response(sink.getvalue(), media_type="application/vnd.apache.parquet", headers=headers)
