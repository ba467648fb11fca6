"""``trackledger users``: create and list accounts on the store (server stopped)."""

from __future__ import annotations

import argparse

from trackledger.api.commands._accounts import add_action, append, offline_store, read_password
from trackledger.api.settings import USERS, Settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "users",
        help="create and list user accounts (for --auth), on the store with the server stopped",
        description="Account changes written straight to the store's ledger, as events (the first admin "
        "starts here; afterwards admins can use the API). Stop the server first.",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = add_action(sub, "create", USERS, _create, help="create a user")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="the user may do everything")
    create.add_argument(
        "--password-file",
        metavar="F",
        help="read the password from the first line of F (default: prompt, or stdin's first line "
        "when it is not a terminal)",
    )
    add_action(sub, "list", USERS, _list, help="list users")


def _create(args: argparse.Namespace, settings: Settings) -> int:
    from trackledger.api.auth import service
    from trackledger.api.auth.secrets import hash_password
    from trackledger.api.writes import accounts

    username = service.check_username(args.username)
    password = service.check_password(read_password(args.password_file))
    with offline_store(settings) as (ledger, projection, index):
        hashed = hash_password(password)
        append(
            ledger,
            projection,
            lambda envelope: accounts.create_user(index, envelope, username, hashed, args.admin),
        )
    print(f"created user {username}" + (" (admin)" if args.admin else ""))
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with offline_store(settings) as (_ledger, projection, _index):
        rows = projection.read("SELECT username, is_admin, created_by FROM users ORDER BY username")
    for username, is_admin, created_by in rows:
        print(f"{username:<24} {'admin' if is_admin else '':<6} created by {created_by}")
    return 0
