"""MLflow's auth REST API (what ``mlflow.server.get_app_client("basic-auth")`` calls), and
personal access tokens.

Users: create, get, list, current, update-password, update-admin, delete (``/api/2.0/mlflow/
users/...``). Per-user permissions on experiments and registered models: grant, revoke, get,
list (``/api/3.0/mlflow/users/permissions/...``), as MLflow 3.17 answers them. Registered models
are named by name on the wire and kept by ``registered_model_id``, so a grant survives a rename.
Every change is an event whose actor is the admin (or manager, or user) who made it.
"""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.routing import Route
from trackledger.api.auth import service as s
from trackledger.api.auth.accounts import LEVEL_NAMES, MANAGE, USE
from trackledger.api.auth.guard import denied, registered_model_resource, require_admin, user_of
from trackledger.api.auth.secrets import hash_password, new_token, token_hash
from trackledger.api.errors import MlflowError, invalid, missing, not_found
from trackledger.api.http import json_response, origin_of
from trackledger.api.threads import blocking
from trackledger.api.writes import accounts as account_writes

MAX_TOKEN_DAYS = 3650


async def _fields(request: Request) -> dict:
    if request.method == "GET":
        return dict(request.query_params)
    body = await request.body()
    if not body.strip():
        return dict(request.query_params)
    try:
        fields = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise invalid(f"Invalid JSON body: {exc}") from None
    if not isinstance(fields, dict):
        raise invalid("The request body must be a JSON object")
    return fields


def _required(fields: dict, name: str, kinds: tuple[type, ...] = (str,)):
    value = fields.get(name)
    if value is None or value == "":
        raise missing(name)
    return _of_kind(name, value, kinds)


def _of_kind(name: str, value, kinds: tuple[type, ...] = (str,)):
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise invalid(f"'{name}' must be a {' or '.join(k.__name__ for k in kinds)}, got {value!r:.80}")
    return value


def _user_json(ctx, username: str) -> dict:
    return {"id": username, "username": username, "is_admin": ctx.auth.accounts.is_admin(username)}


def _self_or_admin(ctx, request: Request, username: str) -> None:
    if user_of(request) != username:
        require_admin(ctx, request)


async def _commit(ctx, request: Request, decide, *args) -> None:
    """``decide``: a function of ``writes.accounts``, run by the write service under its lock."""
    await ctx.writes.commit_off_loop(origin_of(request), decide, *args)


# Users ------------------------------------------------------------------------------------


async def create_user(ctx, request: Request):
    require_admin(ctx, request)
    fields = await _fields(request)
    username = s.check_username(fields.get("username"))
    password = s.check_password(fields.get("password"))
    hashed = await blocking(hash_password, password)
    await _commit(ctx, request, account_writes.create_user, username, hashed)
    return json_response({"user": _user_json(ctx, username)})


async def get_user(ctx, request: Request):
    username = _required(await _fields(request), "username")
    _self_or_admin(ctx, request, username)
    s.user_must_exist(ctx.auth.accounts, username)
    return json_response({"user": _user_json(ctx, username)})


async def list_users(ctx, request: Request):
    require_admin(ctx, request)
    users = [{**_user_json(ctx, name), "roles": []} for name in ctx.auth.accounts.usernames()]
    return json_response({"users": users})


async def current_user(ctx, request: Request):
    return json_response({"user": _user_json(ctx, user_of(request)), "is_basic_auth": True})


async def update_password(ctx, request: Request):
    fields = await _fields(request)
    username = _required(fields, "username")
    password = s.check_password(fields.get("password"))
    accounts = ctx.auth.accounts
    if user_of(request) == username:
        # Self-service re-asserts the current password, so a stolen session cannot rotate it.
        current = fields.get("current_password")
        if not current:
            raise invalid("Current password is required when changing your own password.")
        address = request.client.host if request.client else ""
        if not await ctx.auth.authenticator.check_password(username, current, address):
            raise invalid("Current password does not match.")
        if password == current:
            raise invalid("New password must differ from the current password.")
    else:
        require_admin(ctx, request)
    s.user_must_exist(accounts, username)
    hashed = await blocking(hash_password, password)
    await _commit(ctx, request, account_writes.change_password, username, hashed)
    return json_response()


async def update_admin(ctx, request: Request):
    require_admin(ctx, request)
    fields = await _fields(request)
    username = _required(fields, "username")
    is_admin = fields.get("is_admin")
    if isinstance(is_admin, str) and is_admin.lower() in ("true", "false"):
        is_admin = is_admin.lower() == "true"
    if not isinstance(is_admin, bool):
        raise invalid(f"'is_admin' must be true or false, got {is_admin!r}")
    await _commit(ctx, request, account_writes.set_admin, username, is_admin)
    return json_response()


async def delete_user(ctx, request: Request):
    require_admin(ctx, request)
    username = _required(await _fields(request), "username")
    if username == user_of(request):
        raise MlflowError(
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
            "BAD_REQUEST",
        )
    await _commit(ctx, request, account_writes.delete_user, username)
    return json_response()


# Permissions ------------------------------------------------------------------------------


def _resource(ctx, fields: dict) -> tuple[str, str, str]:
    """(resource_type, the id permissions are kept under, the id as the client named it)."""
    resource_type = s.check_resource_type(_required(fields, "resource_type"))
    given = str(_required(fields, "resource_id", (str, int)))
    if resource_type == "experiment":
        if given not in ctx.writes.index.experiments:
            raise not_found(f"No Experiment with id={given} exists")
        return resource_type, given, given
    found = registered_model_resource(ctx, given)
    if found is None:
        raise not_found(f"Registered Model with name={given} not found")
    return resource_type, found[1], given


def _may_manage(ctx, request: Request, resource_type: str, resource_id: str) -> None:
    username = user_of(request) or ""
    if ctx.auth.accounts.level(username, resource_type, resource_id) < MANAGE:
        raise denied(f"MANAGE on {resource_type} {resource_id} is needed to change its permissions")


async def grant(ctx, request: Request):
    fields = await _fields(request)
    username = _required(fields, "username")
    permission = s.check_permission(_required(fields, "permission"))
    resource_type, resource_id, given = _resource(ctx, fields)
    _may_manage(ctx, request, resource_type, resource_id)  # first: the answer tells nobody else who exists
    s.user_must_exist(ctx.auth.accounts, username)
    await _commit(ctx, request, account_writes.grant, username, resource_type, resource_id, permission, given)
    return json_response()


async def revoke(ctx, request: Request):
    fields = await _fields(request)
    username = _required(fields, "username")
    resource_type, resource_id, given = _resource(ctx, fields)
    _may_manage(ctx, request, resource_type, resource_id)
    s.user_must_exist(ctx.auth.accounts, username)
    await _commit(ctx, request, account_writes.revoke, username, resource_type, resource_id, given)
    return json_response()


async def get_permission(ctx, request: Request):
    fields = await _fields(request)
    username = _required(fields, "username")
    accounts = ctx.auth.accounts
    resource_type = s.check_resource_type(_required(fields, "resource_type"))
    try:
        _, resource_id, _ = _resource(ctx, fields)
    except MlflowError:  # an unknown resource: nobody may use it (as MLflow answers)
        return json_response({"allowed": False, "permission": "NO_PERMISSIONS"})
    if user_of(request) != username:
        _may_manage(ctx, request, resource_type, resource_id)  # first: tells nobody else who exists
    s.user_must_exist(accounts, username)
    level = accounts.level(username, resource_type, resource_id)
    return json_response({"allowed": level >= USE, "permission": LEVEL_NAMES[level]})


def _permission_rows(ctx, username: str) -> dict:
    names = {entry.key: name for name, entry in ctx.writes.index.registered_models.items()}
    rows = []
    for (resource_type, resource_id), level in sorted(ctx.auth.accounts.grants_of(username).items()):
        shown = names.get(resource_id, resource_id) if resource_type == "registered_model" else resource_id
        rows.append(
            {
                "role_id": 0,
                "role_name": f"__user_{username}__",
                "workspace": "default",
                "resource_type": resource_type,
                "resource_pattern": shown,
                "permission": LEVEL_NAMES[level],
            }
        )
    return {"is_admin": ctx.auth.accounts.is_admin(username), "permissions": rows}


async def list_permissions(ctx, request: Request):
    username = _required(await _fields(request), "username")
    _self_or_admin(ctx, request, username)
    s.user_must_exist(ctx.auth.accounts, username)
    return json_response(_permission_rows(ctx, username))


async def current_permissions(ctx, request: Request):
    return json_response(_permission_rows(ctx, user_of(request)))


# Personal access tokens --------------------------------------------------------------------


def token_expiry(days) -> int | None:
    """``expires_in_days`` to an expiry in ms; None (never) when absent."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= MAX_TOKEN_DAYS:
        raise invalid(f"'expires_in_days' must be a number of days between 0 and {MAX_TOKEN_DAYS}")
    return int(time.time() * 1000 + days * 86_400_000)


async def create_token(ctx, request: Request):
    """``POST /api/ledger/tokens {"expires_in_days", "description", "username"}``: a token, shown
    once. ``username`` (someone else's) is for admins."""
    fields = await _fields(request)
    username = _of_kind("username", fields.get("username") or user_of(request))
    _self_or_admin(ctx, request, username)
    expires_at = token_expiry(fields.get("expires_in_days"))
    description = str(fields.get("description") or "")[:500]
    token_id, token = new_token()
    await _commit(
        ctx,
        request,
        account_writes.create_token,
        username,
        token_id,
        token_hash(token),
        expires_at,
        description,
    )
    return json_response(
        {"token": token, "token_id": token_id, "username": username, "expires_at": expires_at}
    )


async def list_tokens(ctx, request: Request):
    username = request.query_params.get("username") or user_of(request)
    _self_or_admin(ctx, request, username)

    def read():
        ctx.projection.flush()
        return ctx.projection.read_records(
            "SELECT token_id, description, creation_time, expires_at, revoked FROM tokens "
            "WHERE username = ? ORDER BY creation_time",
            [username],
        )

    return json_response({"tokens": await blocking(read)})


async def revoke_token(ctx, request: Request):
    token_id = _required(await _fields(request), "token_id")
    username = account_writes.live_token_owner(ctx.writes.index, token_id)
    _self_or_admin(ctx, request, username)
    await _commit(ctx, request, account_writes.revoke_token, token_id, username)
    return json_response()


def _bind(ctx, fn):
    async def endpoint(request: Request):
        return await fn(ctx, request)

    return endpoint


# MLflow's user routes (/api/2.0/mlflow/users/...) share their prefix with every MLflow route: the
# MLflow dispatcher serves them from this table (one dict lookup) instead of ~20 routes matched
# before its own on every request. Each checks who may call it itself.
MLFLOW_ROUTES = {
    ("POST", "users/create"): create_user,
    ("GET", "users/get"): get_user,
    ("GET", "users/list"): list_users,
    ("GET", "users/current"): current_user,
    ("PATCH", "users/update-password"): update_password,
    ("PATCH", "users/update-admin"): update_admin,
    ("DELETE", "users/delete"): delete_user,
}


def routes(ctx) -> list[Route]:
    """The permission routes (MLflow's 3.0 prefix, which no other MLflow route uses) and tokens."""
    table = [
        ("users/permissions/grant", "POST", grant),
        ("users/permissions/revoke", "POST", revoke),
        ("users/permissions/get", "GET", get_permission),
        ("users/permissions/list", "GET", list_permissions),
        ("users/current/permissions", "GET", current_permissions),
    ]
    found = [
        Route(f"{prefix}/3.0/mlflow/{path}", _bind(ctx, fn), methods=[method])
        for prefix in ("/api", "/ajax-api")
        for path, method, fn in table
    ]
    found += [
        Route("/api/ledger/tokens", _bind(ctx, create_token), methods=["POST"]),
        Route("/api/ledger/tokens", _bind(ctx, list_tokens), methods=["GET"]),
        Route("/api/ledger/tokens/revoke", _bind(ctx, revoke_token), methods=["POST"]),
    ]
    return found
