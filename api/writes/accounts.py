"""Accounts: the events of creating, changing and deleting a user, of a personal access token,
and of granting and revoking a permission.

Decided against the write index's accounts (``WriteIndex.users``, ``grants``, ``tokens``), which
the write service keeps current as it stages each event: two requests for the same name, grant or
token at once are decided one after the other, so one lands and the other is refused. (The
server's ``Accounts``, which authenticates and authorises requests, is reloaded from the
projection once the events are durable.) Passwords arrive hashed and tokens as their digest.
"""

from __future__ import annotations

from trackledger.api.errors import MlflowError, already_exists, not_found
from trackledger.api.writes.envelope import Envelope
from trackledger.api.writes.write_index import WriteIndex
from trackledger.ledger.events import (
    Event,
    PermissionGranted,
    PermissionRevoked,
    TokenCreated,
    TokenRevoked,
    UserAdminChanged,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
)


def no_such_user(username: str) -> MlflowError:
    return not_found(f"User with username={username} not found")


def known_user(index: WriteIndex, username: str) -> None:
    if username not in index.users:
        raise no_such_user(username)


def create_user(
    index: WriteIndex, envelope: Envelope, username: str, password_hash: str, is_admin: bool = False
) -> list[Event]:
    if username in index.users:
        raise already_exists(f"User (username={username}) already exists.")
    return [UserCreated(**envelope(0), username=username, password_hash=password_hash, is_admin=is_admin)]


def change_password(index: WriteIndex, envelope: Envelope, username: str, password_hash: str) -> list[Event]:
    known_user(index, username)
    return [UserPasswordChanged(**envelope(0), username=username, password_hash=password_hash)]


def set_admin(index: WriteIndex, envelope: Envelope, username: str, is_admin: bool) -> list[Event]:
    known_user(index, username)
    return [UserAdminChanged(**envelope(0), username=username, is_admin=is_admin)]


def delete_user(index: WriteIndex, envelope: Envelope, username: str) -> list[Event]:
    """The user's tokens and permissions go with it (the projection and the index drop them)."""
    known_user(index, username)
    return [UserDeleted(**envelope(0), username=username)]


def create_token(
    index: WriteIndex,
    envelope: Envelope,
    username: str,
    token_id: str,
    token_hash: str,
    expires_at: int | None,
    description: str,
) -> list[Event]:
    known_user(index, username)
    return [
        TokenCreated(
            **envelope(0),
            username=username,
            token_id=token_id,
            token_hash=token_hash,
            expires_at=expires_at,
            description=description,
        )
    ]


def live_token_owner(index: WriteIndex, token_id: str) -> str:
    owner = index.tokens.get(token_id)
    if owner is None:
        raise not_found(f"No live token with id {token_id}")
    return owner


def revoke_token(index: WriteIndex, envelope: Envelope, token_id: str, username: str) -> list[Event]:
    """``username``: the owner the request was authorised for; the token must still be theirs."""
    if live_token_owner(index, token_id) != username:
        raise not_found(f"No live token with id {token_id}")
    return [TokenRevoked(**envelope(0), username=username, token_id=token_id)]


def grant(
    index: WriteIndex,
    envelope: Envelope,
    username: str,
    resource_type: str,
    resource_id: str,
    permission: str,
    named: str,
) -> list[Event]:
    """``resource_id``: what grants are kept under (an experiment id, a registered_model_id);
    ``named``: the resource as the client named it, for the refusal."""
    known_user(index, username)
    if (username, resource_type, resource_id) in index.grants:
        raise already_exists(
            f"Permission for user={username} on resource_type={resource_type}, "
            f"resource_id={named} already exists."
        )
    return [
        PermissionGranted(
            **envelope(0, **_entity_keys(resource_type, resource_id)),
            username=username,
            resource_type=resource_type,
            resource_id=resource_id,
            permission=permission,
        )
    ]


def revoke(
    index: WriteIndex, envelope: Envelope, username: str, resource_type: str, resource_id: str, named: str
) -> list[Event]:
    if (username, resource_type, resource_id) not in index.grants:
        raise not_found(
            f"Permission for user={username} on resource_type={resource_type}, resource_id={named} not found."
        )
    return [
        PermissionRevoked(
            **envelope(0, **_entity_keys(resource_type, resource_id)),
            username=username,
            resource_type=resource_type,
            resource_id=resource_id,
        )
    ]


def _entity_keys(resource_type: str, resource_id: str) -> dict:
    """A grant on an experiment names it in the envelope, so its audit shows the grant."""
    return {"experiment_id": resource_id} if resource_type == "experiment" else {}
