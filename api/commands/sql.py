"""``trackledger sql``: SQL over the projection tables, offline from a store or via a server."""

from __future__ import annotations

import argparse
import io
import json
import sys
import urllib.error
import urllib.request
from datetime import datetime

import duckdb
import pyarrow
import pyarrow.csv
import pyarrow.parquet
from trackledger.api.settings import Settings

FORMATS = ("table", "csv", "json", "parquet")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="run SQL over the projection tables (offline from the store, or on a server)",
        description="Project the store into an in-memory DuckDB (no server needed) and run one query. "
        "With --server, post the query to that server's read-only /api/sql endpoint instead.",
    )
    parser.add_argument("query", help='e.g. "SELECT key, max(value) FROM latest_metrics GROUP BY key"')
    parser.add_argument("--as-of", help="state at a seq (integer) or a time (ISO 8601 or epoch ms)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout (needed for parquet)")
    parser.add_argument("--server", help="a trackledger server URL: run the query there via /api/sql")
    parser.set_defaults(run=run)


def parse_as_of(text: str | None) -> tuple[int | None, int | None]:
    """'1234' is a seq; '2026-11-22T10:00' or '1795344160393ms' a time (returned as epoch ms)."""
    if not text:
        return None, None
    if text.isdigit():
        return int(text), None
    if text.endswith("ms") and text[:-2].isdigit():
        return None, int(text[:-2])
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return None, int(moment.timestamp() * 1000)


class QueryFailed(Exception):
    """The query was refused or failed; the message says why."""


def _fetch_from_server(args) -> pyarrow.Table:
    """Run the query on the server's sandbox; Parquet keeps the column types for local formatting."""
    body = json.dumps({"query": args.query, "format": "parquet"}).encode()
    request = urllib.request.Request(
        args.server.rstrip("/") + "/api/sql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise QueryFailed(f"{exc.code} {exc.read().decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise QueryFailed(f"cannot reach {args.server}: {exc.reason}") from exc
    return pyarrow.parquet.read_table(io.BytesIO(payload))


def _query_offline(args, settings: Settings) -> pyarrow.Table | None:
    from trackledger.projections import connect

    seq, ts = parse_as_of(args.as_of)
    con = connect(
        settings.store, settings.store_options, as_of_seq=seq, as_of_ts=ts, state_dir=settings.state_dir
    )
    try:
        relation = con.sql(args.query)
    except duckdb.Error as exc:
        raise QueryFailed(str(exc)) from exc
    return None if relation is None else relation.to_arrow_table()


def _write(args, data: bytes) -> None:
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.format == "parquet" and not args.output:
        sys.stderr.write("error: --format parquet needs --output FILE\n")
        return 2
    try:
        table = _fetch_from_server(args) if args.server else _query_offline(args, settings)
    except QueryFailed as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    if table is None:  # a statement without a result
        return 0
    buffer = io.BytesIO()
    if args.format == "table":
        buffer.write(str(duckdb.from_arrow(table)).encode())
    elif args.format == "csv":
        pyarrow.csv.write_csv(table, buffer)
    elif args.format == "json":
        buffer.write((json.dumps(table.to_pylist(), default=str) + "\n").encode())
    else:
        pyarrow.parquet.write_table(table, buffer)
    _write(args, buffer.getvalue())
    return 0
