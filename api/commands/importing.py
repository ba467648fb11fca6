"""``trackledger import``: bring an MLflow history into the ledger, exactly and resumably."""

from __future__ import annotations

import argparse

from trackledger.api.commands import CommandError
from trackledger.api.settings import Settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import an MLflow tracking store or server (runs, metrics, models, registry, artifacts)",
        description="Copy an MLflow history into the ledger with its ids, times and users. Interrupted "
        "and run again, it continues where it stopped and appends nothing twice. Offline on a store "
        "(stop its server first), or through a running server with --server.",
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="SOURCE", help="sqlite:///path/to/mlflow.db"
    )
    parser.add_argument(
        "--artifacts-from",
        metavar="URL",
        help="where the source's mlflow-artifacts:/ files are: its server's --artifacts-destination",
    )
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        metavar="NAME_OR_ID",
        help="import only this experiment (repeatable; default: all)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would come over; write nothing")
    parser.add_argument(
        "--remap-experiment-ids",
        action="store_true",
        help="give experiments whose id the target has taken a new id (the mapping is printed and recorded)",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="import through this running trackledger server instead of writing the store offline",
    )
    parser.set_defaults(run=run)


def _open_target(args: argparse.Namespace, settings: Settings):
    from trackledger.api.settings import storage_options_for
    from trackledger.importer.target import ServerTarget, StoreTarget

    if args.server:
        return ServerTarget(args.server)
    return StoreTarget(
        settings.store,
        settings.state_path,
        settings.artifacts_url,
        storage_options=settings.store_options,
        artifact_options=storage_options_for(settings.artifacts_url),
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from trackledger.importer import open_source
    from trackledger.importer.driver import Importer, Options
    from trackledger.importer.records import SourceError

    console = Console(stderr=True)
    source = target = None
    try:
        source, files = open_source(args.source, args.artifacts_from)
        target = _open_target(args, settings)
        options = Options(args.experiment, args.dry_run, args.remap_experiment_ids)
        with _RichProgress(console) as progress:
            report = Importer(source, files, target, options, progress).run()
    except SourceError as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        raise CommandError("interrupted: run the same command again to continue") from None
    finally:
        if target is not None:
            target.close()
        if source is not None:
            source.close()
    _print_report(report, args, Console())
    return 0


class _RichProgress:
    """One bar per phase (rich), started when the phase starts."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc_info):
        self.bars.stop()

    def start(self, phase: str, total: int | None) -> None:
        self.tasks[phase] = self.bars.add_task(phase, total=total)

    def advance(self, phase: str, amount: int = 1) -> None:
        if phase not in self.tasks:
            self.start(phase, None)
        self.bars.advance(self.tasks[phase], amount)


def _print_report(report, args, console) -> None:
    from rich.table import Table

    title = "would import (dry run)" if args.dry_run else f"imported in {report.seconds:.1f}s"
    table = Table(title=f"{args.source}: {title}")
    table.add_column("what")
    table.add_column("imported" if not args.dry_run else "to import", justify="right")
    table.add_column("already there", justify="right")
    kinds = dict.fromkeys([*report.counts, *report.skipped])
    for kind in kinds:
        table.add_row(kind, f"{report.counts.get(kind, 0):,}", f"{report.skipped.get(kind, 0):,}")
    table.add_row("events appended", f"{report.events:,}", "")
    console.print(table)
    for source_id, target_id in report.remapped.items():
        console.print(f"experiment {source_id} -> {target_id}")
