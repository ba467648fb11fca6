"""The ``trackledger`` command line: one sub-command per module in ``api.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("server", "verify", "events", "rebuild", "sql")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackledger",
        description="Experiment tracking on an append-only ledger, compatible with MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"api.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
