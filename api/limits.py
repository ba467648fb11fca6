"""Request bodies read within a cap: the whole app but the artifact proxy, which streams,
and tighter caps for the routes that have one.

A declared ``Content-Length`` past the cap is answered 413 before the body is read; a body
without one (chunked) is counted as it arrives and refused as soon as it passes the cap, so no
request holds more than the cap in memory.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from trackledger.api.errors import MlflowError

STREAMED_PREFIXES = (
    "/api/2.0/mlflow-artifacts/artifacts/",
    "/ajax-api/2.0/mlflow-artifacts/artifacts/",
    "/api/2.0/mlflow/upload-artifact",  # the UI's upload: the body is the file, streamed as above
    "/ajax-api/2.0/mlflow/upload-artifact",
)


def body_too_large(limit: int) -> MlflowError:
    return MlflowError(
        f"Request body is larger than the server's cap of {limit} bytes (--max-body-mb)",
        "RESOURCE_LIMIT_EXCEEDED",
    )


async def body_at_most(request: Request, limit: int, refuse: Callable[[int], MlflowError]) -> bytes:
    """The body of a route with a tighter cap of its own (MLflow's, e.g. log-batch's 1 MB):
    ``refuse(size)`` is raised before reading when the declared length passes ``limit``, else as
    soon as the bytes read do."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise refuse(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise refuse(size)
        chunks.append(chunk)
    return b"".join(chunks)


class BodyLimit:
    """ASGI middleware: refuse request bodies past ``limit`` bytes (413) while reading them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(STREAMED_PREFIXES):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            error = body_too_large(self.limit)
            await send(
                {
                    "type": "http.response.start",
                    "status": error.status,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": error.body()})
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise body_too_large(self.limit)
            return message

        await self.app(scope, counted, send)
