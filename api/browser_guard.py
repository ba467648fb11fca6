"""Two checks that keep a web page on another site from acting on this server through a browser.

``AllowedHosts``: a request whose ``Host`` header is not one of this server's names is refused
(403). A page on ``evil.example`` whose DNS name is re-pointed at 127.0.0.1 (DNS rebinding)
reaches the server from the victim's own browser, but with ``Host: evil.example``. Loopback names
(``localhost``, ``127.0.0.1``, ``[::1]``, any port), the ``--host`` the server binds when it is a
name or a specific address, and the patterns of ``--allowed-hosts`` are this server's names.
``/health`` and ``/version`` answer any Host, as on MLflow's server: probes address a server by
whatever IP they see, and those two answers hold nothing to steal.

``SameSiteWrites``: a state-changing request (POST, PUT, PATCH, DELETE) that a browser sends from
another site is refused (403) before anything reads its body. A browser says where a request comes
from: ``Origin`` on every write, and ``Sec-Fetch-Site``; a request that carries the page's session
cookie is a browser's too, and must say so. Programs (the mlflow client, curl) send neither and
are not affected. A body sent to a JSON route with a Content-Type must say JSON, as MLflow's
server requires: a ``text/plain`` or form body is what a page on another site can send without
asking the browser first, and it is never read as JSON. (A body without a Content-Type is read,
as programs send it; MLflow refuses those too, but a browser always sends an Origin with them.)
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable

import msgspec
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from trackledger.api.auth.authn import SESSION_COOKIE

log = logging.getLogger("trackledger.api")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::", "[::]")
ANY_HOST_PATHS = ("/health", "/version")
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
SAME_SITE_FETCH = ("same-origin", "none")  # "none": the user's own action (typed URL, bookmark)
JSON_ROUTES = (  # routes whose bodies are read as JSON
    "/api/2.0/mlflow/",
    "/ajax-api/2.0/mlflow/",
    "/api/3.0/mlflow/",
    "/ajax-api/3.0/mlflow/",
    "/api/sql",
    "/api/ledger/import/known",
)
FILE_BODY_ROUTES = ("/api/2.0/mlflow/upload-artifact", "/ajax-api/2.0/mlflow/upload-artifact")


def _refusal(status: int, code: str, message: str) -> Response:
    body = msgspec.json.encode({"error_code": code, "message": message})
    return Response(body, status_code=status, media_type="application/json")


def split_host(host: str) -> tuple[str, str | None]:
    """``Host`` (or a pattern of it) as (name in lower case, port or None): ``[::1]:5000`` gives
    ``("[::1]", "5000")``."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else None
    name, colon, port = host.rpartition(":")
    if colon and (port.isdigit() or port == "*") and ":" not in name:
        return name, port
    return host, None


class HostPattern:
    """One allowed host: a name or address, ``*`` standing for any characters (``*.corp.example``,
    ``10.0.*``); with ``:port`` only that port (``:*`` any), without one any port."""

    def __init__(self, text: str) -> None:
        name, self.port = split_host(text)
        self.text = text
        self.name = re.compile(".*".join(re.escape(part) for part in name.split("*")) + r"\Z")

    def matches(self, name: str, port: str | None) -> bool:
        if self.port not in (None, "*") and self.port != port:
            return False
        return self.name.match(name) is not None


def allowed_host_patterns(bind_host: str, extra: Iterable[str]) -> list[HostPattern] | None:
    """The patterns a Host header must match, or None when ``*`` allows any."""
    extra = [text.strip() for text in extra if text.strip()]
    if "*" in extra:
        return None
    names = [*LOOPBACK_NAMES]
    if bind_host.strip() not in WILDCARD_ADDRESSES:
        bound = bind_host.strip()
        names.append(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
    return [HostPattern(text) for text in (*names, *extra)]


class AllowedHosts:
    """ASGI middleware: 403 for a request whose Host header matches none of ``patterns``."""

    def __init__(self, app: ASGIApp, patterns: list[HostPattern] | None) -> None:
        self.app = app
        self.patterns = patterns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.patterns is None or scope["type"] != "http" or scope["path"] in ANY_HOST_PATHS:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        name, port = split_host(host)
        if host and any(pattern.matches(name, port) for pattern in self.patterns):
            await self.app(scope, receive, send)
            return
        log.warning("refused a request for Host %r (not an allowed host)", host)
        shown = host or "(none)"
        refusal = _refusal(
            403,
            "PERMISSION_DENIED",
            f"Host {shown!r} is not one of this server's names (a guard against DNS rebinding): "
            "start the server with --allowed-hosts naming it",
        )
        await refusal(scope, receive, send)


def is_same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` names the server the request reached (its Host header). The scheme
    only fills in a default port: behind a TLS proxy the page is https, the request reaching us
    http. ``Origin: null`` (a sandboxed frame, a redirect) is never this server."""
    parts = urllib.parse.urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default_port = "443" if parts.scheme == "https" else "80"
    origin_name, origin_port = split_host(parts.netloc)
    name, port = split_host(host)
    return bool(name) and origin_name == name and (origin_port or default_port) == (port or default_port)


def cross_site_reason(method: str, headers: Headers) -> str | None:
    """Why a request is a browser's write from another site, or None when it is not."""
    if method not in STATE_CHANGING:
        return None
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in SAME_SITE_FETCH:
        return f"the browser says it comes from another site (Sec-Fetch-Site: {fetch_site})"
    origin = headers.get("origin")
    if origin is not None:
        if not is_same_origin(origin, headers.get("host", "")):
            return f"it comes from a page of another origin ({origin})"
        return None
    if _has_cookie(headers.get("cookie"), SESSION_COOKIE):
        return "it carries the page's session cookie but no Origin to show where it comes from"
    return None


def _has_cookie(header: str | None, name: str) -> bool:
    return bool(header) and any(part.strip().partition("=")[0] == name for part in header.split(";"))


def _declared_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


class SameSiteWrites:
    """ASGI middleware: 403 for a browser's write from another site; 400 for a JSON route's
    POST or PUT whose body is declared as something else than JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        reason = cross_site_reason(method, headers)
        if reason is not None:
            refusal = _refusal(
                403, "PERMISSION_DENIED", f"Cross-site write refused: {reason}; nothing was changed"
            )
            await refusal(scope, receive, send)
            return
        if (
            method in ("POST", "PUT")
            and path.startswith(JSON_ROUTES)
            and not path.startswith(FILE_BODY_ROUTES)
            and (declared := headers.get("content-type")) is not None
            and _has_body(headers)
            and not _declared_json(declared)
        ):
            refusal = _refusal(
                400,
                "INVALID_PARAMETER_VALUE",
                f"Bad Request. Content-Type must be one of ['application/json'] (got {declared!r}).",
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in headers
