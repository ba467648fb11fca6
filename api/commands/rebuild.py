"""``trackledger rebuild``: drop the DuckDB projection and derive it again from the ledger."""

from __future__ import annotations

import argparse
import sys
import time

from trackledger.api.settings import Settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="drop and re-derive every projection table from the segments and the WAL tail",
        description="Drop every table of the server's DuckDB projection and derive it again with SQL over "
        "the Parquet segments plus the WAL tail. Stop the server first: it holds the file open.",
    )
    parser.set_defaults(run=run)


def progress_bar(done: int, total: int, started: float, width: int = 30) -> None:
    filled = int(width * done / total) if total else width
    elapsed = time.monotonic() - started
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\rrebuild [{bar}] {done}/{total} segments  {elapsed:5.1f}s")
    sys.stderr.flush()


def run(args: argparse.Namespace, settings: Settings) -> int:
    from trackledger.ledger import Ledger
    from trackledger.projections.projection import rebuild_file

    state_dir = settings.state_path
    started = time.monotonic()
    with Ledger(settings.store, state_dir, storage_options=settings.store_options) as ledger:
        counts = rebuild_file(
            ledger,
            state_dir / "projections.duckdb",
            progress=lambda done, total: progress_bar(done, total, started),
        )
    sys.stderr.write("\n")
    print(
        f"rebuilt {counts['events']} events ({counts['metrics']} metric points) "
        f"in {time.monotonic() - started:.1f}s"
    )
    return 0
