"""Signing in and out of the web page, and the admin page for users and permissions.

The session is a signed cookie (``authn.Authenticator.new_session``): HttpOnly, SameSite=Strict,
Secure when the page is served over HTTPS. The page's state-changing requests are safe against
CSRF twice over: the browser does not send a SameSite=Strict cookie with another site's request,
and the auth middleware refuses a cookie-authenticated write whose Origin is not this server.
The admin page changes accounts through the same JSON API as the mlflow client does.
"""

from __future__ import annotations

import urllib.parse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from trackledger.api.auth.accounts import LEVEL_NAMES
from trackledger.api.auth.authn import SESSION_COOKIE, SESSION_TTL_S
from trackledger.api.auth.guard import user_of
from trackledger.api.context import ServerContext
from trackledger.api.web.templating import error_page, render


def _next_path(raw: str | None) -> str:
    """Only a path of this site: never another origin (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


async def login_form(ctx: ServerContext, request: Request) -> Response:
    if ctx.auth is None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", next=_next_path(request.query_params.get("next")), error="")


async def login(ctx: ServerContext, request: Request) -> Response:
    if ctx.auth is None:
        return RedirectResponse("/", status_code=303)
    fields = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
    username = (fields.get("username") or [""])[0]
    password = (fields.get("password") or [""])[0]
    target = _next_path((fields.get("next") or ["/"])[0])
    address = request.client.host if request.client else ""
    authenticator = ctx.auth.authenticator
    if not username or not await authenticator.check_password(username, password, address):
        return render(request, "login.html", 401, next=target, error="Wrong user name or password.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        authenticator.new_session(username),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(ctx: ServerContext, request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response


def admin_page(ctx: ServerContext, request: Request) -> Response:
    if ctx.auth is None or not ctx.auth.accounts.is_admin(user_of(request)):
        return error_page(request, 403, "For admins", "Only an admin may manage users and permissions.")
    accounts = ctx.auth.accounts
    experiments = dict(ctx.projection.read("SELECT experiment_id, name FROM experiments"))
    models = dict(ctx.projection.read("SELECT registered_model_id, name FROM registered_models"))
    users = []
    for username in accounts.usernames():
        grants = []
        for (resource_type, resource_id), level in sorted(accounts.grants_of(username).items()):
            names = experiments if resource_type == "experiment" else models
            shown = resource_id if resource_type == "experiment" else names.get(resource_id, resource_id)
            grants.append(
                {
                    "resource_type": resource_type,
                    "resource_id": shown,
                    "name": names.get(resource_id, "(deleted)"),
                    "permission": LEVEL_NAMES[level],
                }
            )
        users.append({"username": username, "is_admin": accounts.is_admin(username), "grants": grants})
    return render(
        request,
        "admin.html",
        section="admin",
        users=users,
        levels=list(LEVEL_NAMES.values()),
        default_permission=ctx.settings.default_permission,
    )
