"""The ``trackledger`` command line: one sub-command per module in ``api.commands``.

Each sub-command's settings (``--store``, ``--state-dir``, ...) come from ``api.settings``; a
``CommandError`` becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from trackledger.api.commands import CommandError
from trackledger.api.settings import Settings, add_options

COMMANDS = ("server", "verify", "events", "rebuild", "sql", "import", "sync", "users", "tokens")
# A command's module has its name, but for ``import`` (a keyword: no module can be called that).
MODULES = {"import": "importing"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackledger",
        description="Experiment tracking on an append-only ledger, compatible with MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"trackledger.api.commands.{MODULES.get(name, name)}")
        module.add_parser(sub)
        command_parser = sub.choices[name]
        add_options(command_parser, name)
        command_parser.set_defaults(command_parser=command_parser)
    return parser


def exit_now(code: int) -> None:
    """Leave without running C++ static destructors.

    pyarrow's thread pools sometimes abort the interpreter at exit after Parquet reads
    ("terminate called without an active exception", apache/arrow#34314; seen here in about one
    exit in ten), which would turn a finished command into exit 134. Everything of ours is
    already flushed and closed when a command returns.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def execute(argv: list[str] | None = None) -> int:
    """Run one command line and return its exit status (argparse exits by itself on a usage error)."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_args(args.command, args, os.environ)
    except ValueError as exc:
        args.command_parser.error(str(exc))
    try:
        return int(args.run(args, settings) or 0)
    except CommandError as exc:
        sys.stderr.write(f"trackledger {args.command}: error: {exc}\n")
        return 1


def main(argv: list[str] | None = None) -> None:
    exit_now(execute(argv))


if __name__ == "__main__":
    main()
