"""``trackledger tokens``: personal access tokens on the store (server stopped).

A token is printed once; only its hash is stored. Scripts send it as ``MLFLOW_TRACKING_TOKEN``.
"""

from __future__ import annotations

import argparse
import re
import time

from trackledger.api.commands import CommandError
from trackledger.api.commands._accounts import add_action, append, offline_store
from trackledger.api.settings import TOKENS, Settings

_DURATION = re.compile(r"([0-9]{1,5})([dhw]?)")
_UNIT_MS = {"h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000, "": 86_400_000}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tokens",
        help="create, list and revoke personal access tokens, on the store with the server stopped",
        description="Tokens for scripts (MLFLOW_TRACKING_TOKEN). Running servers offer the same "
        "through POST /api/ledger/tokens.",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = add_action(sub, "create", TOKENS, _create, help="create a token and print it (once)")
    create.add_argument("--user", required=True, help="whose token it is")
    create.add_argument("--expires", metavar="DURATION", help="e.g. 12h, 30d, 4w (default: never)")
    create.add_argument("--description", default="", help="what it is for")
    listing = add_action(
        sub, "list", TOKENS, _list, help="list a user's tokens (never the tokens themselves)"
    )
    listing.add_argument("--user", required=True)
    revoke = add_action(sub, "revoke", TOKENS, _revoke, help="revoke a token by its id")
    revoke.add_argument("token_id")


def expiry(text: str | None) -> int | None:
    if text is None:
        return None
    m = _DURATION.fullmatch(text.strip())
    if not m or int(m[1]) == 0:
        raise CommandError(f"--expires takes a duration such as 12h, 30d or 4w, not {text!r}")
    return int(time.time() * 1000) + int(m[1]) * _UNIT_MS[m[2]]


def _create(args: argparse.Namespace, settings: Settings) -> int:
    from trackledger.api.auth.secrets import new_token, token_hash
    from trackledger.api.writes import accounts

    expires_at = expiry(args.expires)
    with offline_store(settings) as (ledger, projection, index):
        token_id, token = new_token()
        append(
            ledger,
            projection,
            lambda envelope: accounts.create_token(
                index, envelope, args.user, token_id, token_hash(token), expires_at, args.description
            ),
        )
    print(token)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with offline_store(settings) as (_ledger, projection, _index):
        rows = projection.read(
            "SELECT token_id, expires_at, revoked, description FROM tokens WHERE username = ? "
            "ORDER BY creation_time",
            [args.user],
        )
    for token_id, expires_at, revoked, description in rows:
        state = "revoked" if revoked else ("never expires" if expires_at is None else f"expires {expires_at}")
        print(f"{token_id}  {state:<24} {description}")
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    from trackledger.api.writes import accounts

    with offline_store(settings) as (ledger, projection, index):
        owner = accounts.live_token_owner(index, args.token_id)
        append(
            ledger,
            projection,
            lambda envelope: accounts.revoke_token(index, envelope, args.token_id, owner),
        )
    print(f"revoked {args.token_id}")
    return 0
