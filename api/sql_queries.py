"""``POST /api/sql``: read-only ad-hoc SQL over the projection, capped in memory, threads, time,
rows and the answer's bytes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from trackledger.api import protocol
from trackledger.api.auth.guard import scope_of
from trackledger.api.errors import MlflowError, invalid, missing
from trackledger.api.http import body_as
from trackledger.api.sql_answers import ANSWERS
from trackledger.api.threads import read_after_writes
from trackledger.projections import SqlLimits


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
    if req.format not in ANSWERS:
        raise invalid(f"Unknown format '{req.format}': use json, csv or parquet")
    settings = ctx.settings
    limits = sql_limits(settings)
    scope = scope_of(ctx, request)  # a non-admin queries snapshots of only the rows they may read
    answer = ANSWERS[req.format]()

    def run() -> Response:
        if not ctx.sql_slots.acquire(blocking=False):
            raise MlflowError(
                f"Query refused: {settings.sql_max_concurrent} SQL queries are running, the cap of "
                "concurrent queries; try again shortly",
                "REQUEST_LIMIT_EXCEEDED",
            )
        try:
            truncated_by = ctx.projection.sql_into(answer, req.query, limits, scope)
            body = answer.body(truncated_by)
        except Exception as exc:  # InvalidQuery, DuckDB errors, caps reached, a type the format cannot hold
            raise invalid(f"Query refused: {exc}") from None
        finally:
            ctx.sql_slots.release()
        return Response(body, media_type=answer.media_type, headers=answer.headers(truncated_by))

    return await read_after_writes(ctx, run)
