"""The ``trackledger`` command line: one sub-command per module in ``api.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMANDS = ("server", "verify", "events", "rebuild", "sql")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackledger",
        description="Experiment tracking on an append-only ledger, compatible with MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"trackledger.api.commands.{name}")
        module.add_parser(sub)
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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    exit_now(int(args.run(args) or 0))


if __name__ == "__main__":
    main()
