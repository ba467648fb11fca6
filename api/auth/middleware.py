"""The ASGI layer that makes every request a verified user's, or refuses it.

API requests without (valid) credentials get MLflow's 401: ``UNAUTHENTICATED`` JSON with
``WWW-Authenticate: Basic``, so the mlflow client and curl know to send credentials; the web
page's requests are sent to the sign-in form instead (a Basic challenge would pop up the
browser's own dialog). Health, version, the sign-in form and static files are public. A page's
write from another site (CSRF) never gets here: see ``trackledger.api.browser_guard``.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import msgspec
from starlette.datastructures import Headers
from starlette.responses import RedirectResponse, Response
from trackledger.api.auth.accounts import Accounts
from trackledger.api.auth.authn import SESSION_COOKIE, Authenticator, Unauthenticated

USER_KEY = "trackledger.user"
ADMIN_KEY = "trackledger.admin"  # the page shows admins its Admin link
PUBLIC = ("/health", "/version", "/login", "/static/")
API_PREFIXES = ("/api/", "/ajax-api/")


@dataclass
class Auth:
    """What ``ServerContext.auth`` holds when the server runs with ``--auth``."""

    accounts: Accounts
    authenticator: Authenticator


def unauthenticated(message: str) -> Response:
    body = msgspec.json.encode({"error_code": "UNAUTHENTICATED", "message": message})
    return Response(
        body,
        status_code=401,
        media_type="application/json",
        headers={"WWW-Authenticate": 'Basic realm="trackledger"'},
    )


class AuthMiddleware:
    def __init__(self, app, ctx) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope, receive, send) -> None:
        auth: Auth | None = self.ctx.auth
        if scope["type"] != "http" or auth is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = Headers(scope=scope)
        client = scope.get("client")
        cookie = _cookie(headers.get("cookie"), SESSION_COOKIE)
        try:
            user = await auth.authenticator.identify(
                headers.get("authorization"), cookie, client[0] if client else ""
            )
        except Unauthenticated as exc:
            user, problem = None, str(exc)
        else:
            problem = "Authentication required: send HTTP Basic credentials or a Bearer token"
        if user is None and not path.startswith(PUBLIC) and path != "/favicon.ico":
            if path.startswith(API_PREFIXES):
                response = unauthenticated(problem)
            else:
                target = path + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")
                response = RedirectResponse("/login?next=" + urllib.parse.quote(target), status_code=303)
            await response(scope, receive, send)
            return
        scope[USER_KEY] = user
        scope[ADMIN_KEY] = auth.accounts.is_admin(user)
        await self.app(scope, receive, send)


def forbidden(message: str) -> Response:
    body = msgspec.json.encode({"error_code": "PERMISSION_DENIED", "message": message})
    return Response(body, status_code=403, media_type="application/json")


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return None
