"""``trackledger sql``: SQL over the projection tables, offline from a store or via a server."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime

import duckdb
import pyarrow
import pyarrow.csv
import pyarrow.parquet
from trackledger.api.commands import CommandError, existing_store
from trackledger.api.settings import Settings

FORMATS = ("table", "csv", "json", "parquet")
PREVIEW_ROWS = 10
OFFLINE_ONLY = {"--as-of": "as_of", "--store": "store", "--state-dir": "state_dir"}  # flag: its dest


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="run SQL over the projection tables (offline from the store, or on a server)",
        description="Project the store into an in-memory DuckDB (no server needed) and run one query. "
        "With --server, post the query to that server's read-only /api/sql endpoint instead.",
    )
    parser.add_argument("query", help='e.g. "SELECT key, max(value) FROM latest_metrics GROUP BY key"')
    parser.add_argument(
        "--as-of",
        metavar="T",
        help="state at a seq (1200), a time in ISO 8601 (2026-11-22T10:40, UTC unless it names a zone: "
        "2026-11-22T10:40+01:00) or epoch milliseconds (1795344160393ms); offline only",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="write to this file instead of stdout (needed for parquet)"
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="a trackledger server URL: run the query on its live projection via /api/sql "
        "(not with --as-of, --store or --state-dir)",
    )
    parser.set_defaults(run=run)


def parse_as_of(text: str | None) -> tuple[int | None, int | None]:
    """'1234' is a seq; '2026-11-22T10:00' (UTC unless it names a zone) or '1795344160393ms' a time
    (returned as epoch ms)."""
    if not text:
        return None, None
    if text.isdigit():
        return int(text), None
    if text.endswith("ms") and text[:-2].isdigit():
        return None, int(text[:-2])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--as-of {text!r}: give a seq (1200), an ISO 8601 time (2026-11-22T10:40, UTC unless it names "
            "a zone) or epoch milliseconds (1795344160393ms)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None, int(moment.timestamp() * 1000)


CAP_FLAGS = {"rows": "--sql-max-rows", "bytes": "--sql-max-bytes"}  # what cut an answer: the server's flag


def _fetch_from_server(args) -> pyarrow.Table:
    """Run the query on the server's sandbox; Parquet keeps the column types for local formatting.
    An answer a server cap cut short is said so on stderr."""
    body = json.dumps({"query": args.query, "format": "parquet"}).encode()
    request = urllib.request.Request(
        args.server.rstrip("/") + "/api/sql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
            truncated_by = response.headers.get("x-trackledger-truncated", "false")
    except urllib.error.HTTPError as exc:
        raise CommandError(f"the server answered {exc.code}: {_error_message(exc.read())}") from None
    except urllib.error.URLError as exc:
        raise CommandError(f"cannot reach {args.server}: {exc.reason}") from None
    table = pyarrow.parquet.read_table(io.BytesIO(payload))
    if truncated_by in CAP_FLAGS:
        print(
            f"note: the server cut the answer at {table.num_rows:,} rows, its {CAP_FLAGS[truncated_by]} cap",
            file=sys.stderr,
        )
    return table


def _error_message(body: bytes) -> str:
    """An MLflow error's message on one line, or the body as it came."""
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace")
    return " ".join(str(message).split())


def _query_offline(args, settings: Settings) -> pyarrow.Table | None:
    from trackledger.projections import connect

    seq, ts = parse_as_of(args.as_of)
    existing_store(settings)
    try:
        con = connect(
            settings.store, settings.store_options, as_of_seq=seq, as_of_ts=ts, state_dir=settings.state_dir
        )
    except duckdb.Error as exc:
        reason = " ".join(str(exc).split())
        raise CommandError(f"cannot read the store: {reason} (`trackledger verify` checks it)") from None
    try:
        relation = con.sql(args.query)
    except duckdb.Error as exc:
        raise CommandError(str(exc)) from None
    return None if relation is None else relation.to_arrow_table()


def render_table(table: pyarrow.Table, width: int | None = None) -> str:
    """A box, the column types under the names, and the row count; a long result shows its first and
    last PREVIEW_ROWS rows. Cells too wide for ``width`` columns end in an ellipsis; without a
    ``width`` (not a terminal) every cell is shown whole."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    count = table.num_rows
    shown = count if count <= 2 * PREVIEW_ROWS else 2 * PREVIEW_ROWS
    footer = f"{count:,} row{'' if count == 1 else 's'}" + (f" ({shown} shown)" if shown < count else "")
    view = Table()
    for field in table.schema:
        numeric = pyarrow.types.is_integer(field.type) or pyarrow.types.is_floating(field.type)
        view.add_column(
            Text(f"{field.name}\n{field.type}"),
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
        )
    if shown == count:
        rows = table.to_pylist()
    else:
        gap = dict.fromkeys(table.column_names, "·")
        head, tail = table.slice(0, PREVIEW_ROWS), table.slice(count - PREVIEW_ROWS)
        rows = [*head.to_pylist(), gap, *tail.to_pylist()]
    for row in rows:
        view.add_row(*(Text("NULL" if value is None else str(value)) for value in row.values()))
    console = Console(file=io.StringIO(), color_system=None, width=10**6)
    console.width = width or console.measure(view).maximum
    console.print(view)
    return "".join(line.rstrip() + "\n" for line in console.file.getvalue().splitlines()) + footer + "\n"


def _write(args, data: bytes) -> None:
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.format == "parquet" and not args.output:
        args.command_parser.error("--format parquet needs --output FILE")
    offline_only = [flag for flag, given in OFFLINE_ONLY.items() if getattr(args, given) is not None]
    if args.server and offline_only:
        args.command_parser.error(
            f"--server runs the query on the server's live projection: {', '.join(offline_only)} "
            "would not apply (leave out --server to query the store itself)"
        )
    table = _fetch_from_server(args) if args.server else _query_offline(args, settings)
    if table is None:  # a statement without a result
        return 0
    buffer = io.BytesIO()
    if args.format == "table":
        on_terminal = not args.output and sys.stdout.isatty()
        buffer.write(
            render_table(table, shutil.get_terminal_size().columns if on_terminal else None).encode()
        )
    elif args.format == "csv":
        pyarrow.csv.write_csv(table, buffer)
    elif args.format == "json":
        buffer.write((json.dumps(table.to_pylist(), default=str) + "\n").encode())
    else:
        pyarrow.parquet.write_table(table, buffer)
    _write(args, buffer.getvalue())
    return 0
