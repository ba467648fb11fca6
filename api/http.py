"""Small HTTP helpers shared by the route modules: JSON in and out, request origin."""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from trackledger.api.errors import MlflowError, invalid
from trackledger.api.protocol import convert, decode
from trackledger.api.validation import integer
from trackledger.api.writes.envelope import Origin

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
EMPTY = b"{}"


def json_response(obj: Any = None, status: int = 200) -> Response:
    body = EMPTY if obj is None else _encoder.encode(obj)
    return Response(body, status_code=status, media_type="application/json")


def error_response(exc: MlflowError) -> Response:
    return Response(exc.body(), status_code=exc.status, media_type="application/json")


DECODED_BODY = "trackledger.body"


def decode_once(request: Request, kind: type[T], body: bytes) -> T:
    """``decode``, once a request: with auth on, the guard decodes a logging route's body to find
    its run, and the handler gets that instead of parsing the body again."""
    found = request.scope.get(DECODED_BODY)
    if type(found) is not kind:
        found = request.scope[DECODED_BODY] = decode(kind, body)
    return found


async def body_as(request: Request, kind: type[T]) -> T:
    return decode_once(request, kind, await request.body())


async def fields_as(request: Request, kind: type[T], repeated: tuple[str, ...] = ()) -> T:
    """The request's fields: the query string of a GET (or of a DELETE without a body), else
    the JSON body. ``repeated`` fields may appear several times in a query string."""
    body = await request.body()
    if request.method == "GET" or (request.method == "DELETE" and not body.strip()):
        params: dict = dict(request.query_params)
        for name in repeated:
            if name in params:
                params[name] = request.query_params.getlist(name)
        return convert(kind, params)
    return decode(kind, body)


def origin_of(request: Request) -> Origin:
    """The identity (verified with auth on, else claimed) and the transport facts recorded on
    every event."""
    headers = request.headers
    client = request.client
    verified = request.scope.get("trackledger.user")
    return Origin(
        actor=verified or _basic_auth_user(headers.get("authorization")),
        actor_verified=verified is not None,
        remote_addr=client.host if client else None,
        user_agent=headers.get("user-agent"),
        idempotency_key=headers.get("idempotency-key"),
    )


def _basic_auth_user(value: str | None) -> str | None:
    if not value or not value.lower().startswith("basic "):
        return None
    try:
        user = base64.b64decode(value[6:].strip()).decode("utf-8").split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user or None


def _json_float(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def metric_values_for_json(metrics: list[dict] | None) -> None:
    """JSON has no NaN or infinities: MLflow returns NaN as the string "NaN", and the same
    protobuf JSON mapping its client parses writes infinities as "Infinity" and "-Infinity"
    (infinities logged through the MLflow routes are already clamped to +-MAX_DOUBLE, as MLflow
    does; only native events can hold one)."""
    for metric in metrics or ():
        metric["value"] = _json_float(metric.get("value"))


def metrics_for_json(entity: dict | None) -> dict | None:
    """A run or a logged model with its metric values written as JSON can hold them."""
    if entity:
        metric_values_for_json(entity.get("data", {}).get("metrics"))
    return entity


def query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value != "" else None


def int_query(request: Request, name: str) -> int | None:
    """An integer query parameter, None when absent, else a 400."""
    raw = query(request, name)
    if raw is None:
        return None
    number = integer(raw)
    if number is None:
        raise invalid(f"Invalid value {raw!r} for parameter '{name}' supplied: expected an integer")
    return number


_LEADING_SLASHES = re.compile(r"^/{2,}")


class MergeLeadingSlashes:
    """Slashes repeated at the start of a request path count as one, as on MLflow's server:
    clients join a base URL ending in ``/`` with ``/model-versions/get-artifact``. Inside a path
    they stay (an artifact path with an empty part is refused, not silently renamed)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("//"):
            scope = {**scope, "path": _LEADING_SLASHES.sub("/", scope["path"])}
        await self.app(scope, receive, send)
