"""``trackledger sync``: the logging client's sync command (``trackledger_client.sync``), so it
is at hand where the server is installed too; training machines have ``trackledger-sync``."""

from __future__ import annotations

import argparse

from trackledger.api.commands import CommandError
from trackledger.api.settings import Settings


def add_parser(subparsers) -> None:
    try:
        from trackledger_client import sync
    except ImportError:
        parser = subparsers.add_parser(
            "sync", help="ship a logging client's spool (needs trackledger-client)"
        )
        parser.add_argument("spool_dir", nargs="?")
        parser.set_defaults(run=_missing)
        return
    parser = subparsers.add_parser("sync", help=sync.HELP, description=sync.DESCRIPTION)
    sync.add_arguments(parser)
    parser.set_defaults(run=lambda args, settings: sync.run(args))


def _missing(args: argparse.Namespace, settings: Settings) -> int:
    raise CommandError("needs the logging client: pip install ./client (the trackledger-client package)")
