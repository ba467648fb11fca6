"""The server's view of accounts: users, credentials, tokens and grants, and what each may do.

Loaded whole from the projection's account tables (derived from the ledger) at start-up and
again after every write that changes them (``reload``), so checks are dictionary lookups: a
log-metric pays no query for its permission check. Account changes are rare; a reload reads a
few small tables.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from trackledger.projections.scope import IdSet, Scope

LEVELS = {"NO_PERMISSIONS": 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}
NO_PERMISSIONS, READ, USE, EDIT, MANAGE = 0, 1, 2, 3, 4
LEVEL_NAMES = {level: name for name, level in LEVELS.items()}
RESOURCE_TYPES = ("experiment", "registered_model")


@dataclass(frozen=True, slots=True)
class Token:
    username: str
    hash: str
    expires_at: int | None


@dataclass(slots=True)
class _State:
    admins: dict[str, bool] = field(default_factory=dict)  # username -> is_admin
    passwords: dict[str, str] = field(default_factory=dict)  # username -> scrypt hash
    tokens: dict[str, Token] = field(default_factory=dict)  # token_id -> live token
    grants: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)  # user -> (type, id) -> level


class Accounts:
    def __init__(self, default_permission: str = "READ") -> None:
        self.default_level = LEVELS[default_permission]
        self._state = _State()
        self._lock = threading.Lock()
        self._listeners: list = []  # called after each reload (credential caches drop entries)

    def on_reload(self, listener) -> None:
        self._listeners.append(listener)

    def reload(self, projection) -> None:
        """Read the account tables again (the caller flushed the projection)."""
        state = _State()
        for username, is_admin in projection.read("SELECT username, is_admin FROM users"):
            state.admins[username] = bool(is_admin)
        for username, hash_ in projection.read(
            "SELECT username, hash FROM credentials WHERE kind = 'password'"
        ):
            state.passwords[username] = hash_
        for token_id, username, hash_, expires_at in projection.read(
            """SELECT c.id, c.username, c.hash, t.expires_at FROM credentials c
            JOIN tokens t ON t.token_id = c.id WHERE c.kind = 'token' AND NOT t.revoked"""
        ):
            state.tokens[token_id] = Token(username, hash_, expires_at)
        for username, rtype, rid, permission in projection.read(
            "SELECT username, resource_type, resource_id, permission FROM permissions"
        ):
            state.grants.setdefault(username, {})[(rtype, rid)] = LEVELS.get(permission, NO_PERMISSIONS)
        with self._lock:
            self._state = state
        for listener in self._listeners:
            listener()

    # Who ------------------------------------------------------------------------------

    def exists(self, username: str) -> bool:
        return username in self._state.admins

    def is_admin(self, username: str | None) -> bool:
        return bool(username) and self._state.admins.get(username, False)

    def usernames(self) -> list[str]:
        return sorted(self._state.admins)

    def password_hash(self, username: str) -> str | None:
        return self._state.passwords.get(username)

    def token(self, token_id: str) -> Token | None:
        return self._state.tokens.get(token_id)

    @property
    def any_admin(self) -> bool:
        return any(self._state.admins.values())

    # What they may do -------------------------------------------------------------------

    def level(self, username: str, resource_type: str, resource_id: str) -> int:
        state = self._state
        if state.admins.get(username):
            return MANAGE
        granted = state.grants.get(username, {}).get((resource_type, resource_id))
        return self.default_level if granted is None else granted

    def explicit_level(self, username: str, resource_type: str, resource_id: str) -> int | None:
        return self._state.grants.get(username, {}).get((resource_type, resource_id))

    def grants_of(self, username: str) -> dict[tuple[str, str], int]:
        return dict(self._state.grants.get(username, {}))

    def scope(self, username: str) -> Scope | None:
        """What ``username`` may read, for filtering queries; None: everything (an admin)."""
        if self.is_admin(username):
            return None
        grants = self._state.grants.get(username, {})
        allow = self.default_level < READ

        def ids(resource_type: str) -> IdSet:
            if allow:
                chosen = {rid for (t, rid), lvl in grants.items() if t == resource_type and lvl >= READ}
            else:
                chosen = {rid for (t, rid), lvl in grants.items() if t == resource_type and lvl < READ}
            return IdSet(frozenset(chosen), allow)

        return Scope(ids("experiment"), ids("registered_model"), username)
