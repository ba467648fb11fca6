"""Starting auth with the server, and the checks of account fields shared by the REST API and the CLI."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from trackledger.api.auth.accounts import LEVELS, RESOURCE_TYPES, Accounts
from trackledger.api.auth.authn import Authenticator
from trackledger.api.auth.middleware import Auth
from trackledger.api.errors import invalid
from trackledger.api.writes.accounts import no_such_user
from trackledger.ledger.events import (
    Event,
    ExperimentCreated,
    PermissionGranted,
    PermissionRevoked,
    RegisteredModelCreated,
    TokenCreated,
    TokenRevoked,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
)

log = logging.getLogger("trackledger.auth")
ACCOUNT_EVENTS = (
    UserCreated,
    UserPasswordChanged,
    UserAdminChanged,
    UserDeleted,
    TokenCreated,
    TokenRevoked,
    PermissionGranted,
    PermissionRevoked,
)
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MAX_PASSWORD = 1024


def open_auth(ctx, state_dir: Path) -> Auth:
    accounts = Accounts(ctx.settings.default_permission)
    ctx.projection.flush()
    accounts.reload(ctx.projection)

    def reload_on_change(events: list[Event]) -> None:
        if any(_changes_accounts(e) for e in events):
            ctx.projection.flush()
            accounts.reload(ctx.projection)

    ctx.writes.on_commit.append(reload_on_change)
    if not accounts.any_admin:
        log.warning(
            "auth is on and no admin exists yet: create one with `trackledger users create NAME --admin`"
        )
    return Auth(accounts, Authenticator(accounts, state_dir))


def _changes_accounts(event: Event) -> bool:
    if isinstance(event, ACCOUNT_EVENTS):
        return True
    return event.actor_verified and isinstance(event, ExperimentCreated | RegisteredModelCreated)


def check_username(username) -> str:
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise invalid(
            "A username is 1 to 64 characters: letters, digits and . _ @ + - (not first), "
            f"got {str(username)[:80]!r}"
        )
    return username


def check_password(password) -> str:
    if not isinstance(password, str) or not password:
        raise invalid("Username and password cannot be empty.")
    if len(password) > MAX_PASSWORD:
        raise invalid(f"A password is at most {MAX_PASSWORD} characters")
    return password


def check_permission(permission) -> str:
    if permission not in LEVELS:
        raise invalid(f"Invalid permission {permission!r}: use one of {', '.join(LEVELS)}")
    return permission


def check_resource_type(resource_type) -> str:
    if resource_type not in RESOURCE_TYPES:
        raise invalid(f"Unsupported resource_type {resource_type!r}: use one of {', '.join(RESOURCE_TYPES)}")
    return resource_type


def user_must_exist(accounts: Accounts, username: str) -> None:
    """For reads and early refusals; a write decides again under the write lock (writes.accounts)."""
    if not accounts.exists(username):
        raise no_such_user(username)
