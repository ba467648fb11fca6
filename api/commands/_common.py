"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse
import os

DEFAULT_STORE = "./trackledger-data"


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("TRACKLEDGER_STORE", DEFAULT_STORE),
        help="ledger store URL: a path, file://, memory:// or s3://bucket/prefix "
        "(default: $TRACKLEDGER_STORE or ./trackledger-data)",
    )
