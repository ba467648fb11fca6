"""``trackledger sync [SPOOL_DIR]`` (also ``trackledger-sync``): ship what processes left in a spool.

Works from any machine that reaches the server: copy the spool directory there, or name the
server with ``--server``. Segments still locked by a live process are left to it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "ship the logging that training processes left in a spool directory"
DESCRIPTION = (
    "Ship what training processes that logged through trackledger+http:// left in their spool "
    "(records, then artifacts), each request once. Without SPOOL_DIR, every spool under the user's "
    "cache directory. Exit 0 when everything was shipped, 1 otherwise."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spool_dir", nargs="?", help="a spool directory (default: all under the cache dir)")
    parser.add_argument(
        "--server",
        help="the server's URL (http://host:port or trackledger+http://...; default: the one the "
        "spool was written for)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)"
    )


def run(args: argparse.Namespace) -> int:
    from trackledger_client.settings import spool_root

    if args.spool_dir:
        spools = [Path(args.spool_dir)]
        if not (spools[0] / "target").exists():
            print(f"trackledger sync: {args.spool_dir} is not a spool directory", file=sys.stderr)
            return 2
    else:
        root = spool_root()
        spools = sorted(p for p in root.glob("*") if (p / "target").exists()) if root.is_dir() else []
    ok = True
    for spool_dir in spools:
        ok = _sync_one(spool_dir, args.server, args.timeout) and ok
    if not spools:
        print("trackledger sync: no spool to ship")
    return 0 if ok else 1


def _sync_one(spool_dir: Path, server: str | None, timeout_s: float) -> bool:
    import time
    from functools import partial

    from mlflow.utils.credentials import get_default_host_creds

    from trackledger_client.server import Server
    from trackledger_client.settings import Settings, server_url
    from trackledger_client.shipper import Shipper
    from trackledger_client.spool import TARGET_FILE, Spool

    url = server or (spool_dir / TARGET_FILE).read_text().strip()
    if url.startswith("trackledger+"):
        url = server_url(url)
    settings = Settings.from_env(url)
    spool = Spool(spool_dir, url, settings.budget_bytes)
    shipper = Shipper(spool, Server(partial(get_default_host_creds, url), settings.request_timeout_s), 5.0)
    found = spool.adopt_leftovers()
    deadline = time.monotonic() + timeout_s
    shipped = False
    while True:
        shipped = shipper.ship_all()
        if shipped or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    left = spool.unshipped_bytes()
    spool.close()
    for refusal in shipper.refusals:
        print(f"trackledger sync: refused by the server: {refusal.error.message}", file=sys.stderr)
    if shipped:
        print(f"trackledger sync: {spool_dir}: shipped {found} segment(s) to {url}")
    else:
        print(f"trackledger sync: {spool_dir}: {left} bytes not shipped ({url} is out)", file=sys.stderr)
    return shipped and not shipper.refusals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trackledger-sync", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
