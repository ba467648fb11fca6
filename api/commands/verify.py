"""``trackledger verify``: recompute every segment's digest and each writer's hash chain."""

from __future__ import annotations

import argparse

from trackledger.api.commands import existing_store
from trackledger.api.settings import Settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check the ledger's integrity (segment digests and per-writer chains)",
        description="Recompute every segment's digest and each writer's chain. Exit 0 when intact; "
        "exit 1 naming the first bad segment when one was modified, removed, reordered or inserted.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec
    from trackledger.ledger import verify

    report = verify(existing_store(settings))
    if args.json:
        print(msgspec.json.encode({**msgspec.structs.asdict(report), "ok": report.ok}).decode())
    else:
        print(report.summary())
    return 0 if report.ok else 1
