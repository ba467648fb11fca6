"""``trackledger rebuild``: drop the DuckDB projection and derive it again from the ledger."""

from __future__ import annotations

import argparse
import time

from trackledger.api.commands import CommandError, existing_store
from trackledger.api.settings import Settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="drop and re-derive every projection table from the segments and the WAL tail",
        description="Drop every table of the server's DuckDB projection and derive it again with SQL over "
        "the Parquet segments plus the WAL tail, counting the events on stderr. Stop the server first: "
        "it holds the state directory.",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from trackledger.ledger import Ledger, StateDirInUse
    from trackledger.projections.projection import rebuild_file

    store = existing_store(settings)
    state_dir = settings.state_path
    started = time.monotonic()
    columns = (
        TextColumn("rebuild"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
    )
    stderr = Console(stderr=True)
    bar = Progress(*columns, console=stderr, disable=not stderr.is_terminal)
    try:
        with Ledger(store, state_dir) as ledger, bar:
            task = bar.add_task("rebuild", total=None)
            counts = rebuild_file(
                ledger,
                state_dir / "projections.duckdb",
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except StateDirInUse:
        raise CommandError(f"a server (or another rebuild) is using {state_dir}: stop it first") from None
    print(
        f"rebuilt {counts['events']} events ({counts['metrics']} metric points) "
        f"in {time.monotonic() - started:.1f}s"
    )
    return 0
