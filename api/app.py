"""The Starlette application: MLflow REST (also under /ajax-api), artifact proxy, native API, web UI."""

from __future__ import annotations

import logging
import re
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from trackledger.api import (
    artifacts,
    entity_artifacts,
    event_history,
    experiments,
    imports,
    logged_models,
    model_versions,
    registered_models,
    run_logging,
    runs,
    sql_queries,
    stream,
)
from trackledger.api.auth import guard
from trackledger.api.auth import routes as auth_routes
from trackledger.api.auth.middleware import AuthMiddleware
from trackledger.api.browser_guard import AllowedHosts, SameSiteWrites, allowed_host_patterns
from trackledger.api.context import ServerContext
from trackledger.api.errors import MlflowError
from trackledger.api.http import MergeLeadingSlashes, error_response, json_response
from trackledger.api.limits import BodyLimit
from trackledger.api.settings import Settings
from trackledger.api.webhooks import routes as webhooks
from trackledger.projections import InvalidQuery, ProjectionUnavailable

log = logging.getLogger("trackledger.api")
VERSION = "3.17.2"  # the MLflow REST version we speak; clients compare it for feature gates

MLFLOW_ROUTES = {
    **experiments.ROUTES,
    **runs.ROUTES,
    **run_logging.ROUTES,
    **logged_models.ROUTES,
    **registered_models.ROUTES,
    **model_versions.ROUTES,
    **webhooks.ROUTES,
    **entity_artifacts.ROUTES,
}
PATTERN_ROUTES = [
    (method, re.compile(pattern + "$"), fn)
    for (method, pattern), fn in {
        **logged_models.PATTERN_ROUTES,
        **webhooks.PATTERN_ROUTES,
        **entity_artifacts.PATTERN_ROUTES,
    }.items()
]
KNOWN_PATHS = {path for _, path in MLFLOW_ROUTES}
SERVER_INFO = {
    "store_type": "TrackLedger",
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {},
}


def _mlflow_dispatch(ctx: ServerContext):
    """One route for all of /api/2.0/mlflow/*: a dict lookup is cheaper than matching ~60 regexes."""

    async def endpoint(request: Request) -> Response:
        rest = request.path_params["rest"].rstrip("/")
        if ctx.auth is not None:
            account_handler = auth_routes.MLFLOW_ROUTES.get((request.method, rest))
            if account_handler is not None:  # it decides itself who may call it
                return await account_handler(ctx, request)
            await guard.authorize(ctx, request, rest)
        handler = MLFLOW_ROUTES.get((request.method, rest))
        if handler is not None:
            return await handler(ctx, request)
        path_known = rest in KNOWN_PATHS
        for method, pattern, fn in PATTERN_ROUTES:
            if m := pattern.match(rest):
                if method == request.method:
                    return await fn(ctx, request, **m.groupdict())
                path_known = True
        if path_known:
            raise MlflowError(
                f"Method {request.method} is not allowed for {request.url.path}", "METHOD_NOT_ALLOWED"
            )
        raise MlflowError(f"No API endpoint {request.url.path}", "ENDPOINT_NOT_FOUND")

    return endpoint


def _bind(ctx: ServerContext, fn):
    async def endpoint(request: Request) -> Response:
        return await fn(ctx, request, **request.path_params)

    return endpoint


async def _health(request: Request) -> Response:
    """``OK``, or 503 and one line per failure (a projection that cannot apply events, a WAL
    that cannot roll), so an orchestrator restarts or alerts."""
    failures = request.app.state.ctx.failures()
    if failures:
        return PlainTextResponse("\n".join(["UNHEALTHY", *failures]), status_code=503)
    return PlainTextResponse("OK")


async def _version(request: Request) -> Response:
    return PlainTextResponse(VERSION)


async def _server_info(request: Request) -> Response:
    return json_response(SERVER_INFO)


async def _mlflow_error(request: Request, exc: MlflowError) -> Response:
    return error_response(exc)


async def _invalid_query(request: Request, exc: InvalidQuery) -> Response:
    return error_response(MlflowError(str(exc), "INVALID_PARAMETER_VALUE"))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    code = {404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_REQUEST")
    return json_response({"error_code": code, "message": str(exc.detail)}, status=exc.status_code)


async def _projection_unavailable(request: Request, exc: ProjectionUnavailable) -> Response:
    # 503: the mlflow client retries it, and the write it may follow is durable already.
    message = f"Reads are unavailable until the projection catches up ({exc.reason}); writes are recorded"
    return json_response({"error_code": "TEMPORARILY_UNAVAILABLE", "message": message}, status=503)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # An exception's text may hold paths, SQL or values of the request: it goes to the log only,
    # and the answer names the log line by a reference.
    reference = uuid.uuid4().hex[:12]
    log.error("unhandled error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
    message = f"Internal server error (reference {reference}): the details are in the server log"
    return json_response({"error_code": "INTERNAL_ERROR", "message": message}, status=500)


def _routes(ctx: ServerContext) -> list:
    mlflow = _mlflow_dispatch(ctx)
    all_methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    routes: list = []
    for prefix in ("/api", "/ajax-api"):
        routes += [
            Route(prefix + "/2.0/mlflow/{rest:path}", mlflow, methods=all_methods),
            Route(
                prefix + "/2.0/mlflow-artifacts/artifacts",
                _bind(ctx, artifacts.list_artifacts),
                methods=["GET"],
            ),
            Route(prefix + "/3.0/mlflow/server-info", _server_info, methods=["GET"]),
        ]
        artifact_file = prefix + "/2.0/mlflow-artifacts/artifacts/{path:path}"
        routes += [
            Route(artifact_file, _bind(ctx, handler), methods=[method])
            for method, handler in (
                ("GET", artifacts.download),
                ("PUT", artifacts.upload),
                ("DELETE", artifacts.delete),
            )
        ]
    routes += [
        Route("/health", _health, methods=["GET"]),
        Route("/get-artifact", entity_artifacts.get_run_artifact, methods=["GET"]),
        Route("/model-versions/get-artifact", entity_artifacts.get_model_version_artifact, methods=["GET"]),
        Route("/version", _version, methods=["GET"]),
        Route("/api/ledger/events", _bind(ctx, event_history.events), methods=["GET"]),
        Route("/api/ledger/stream", _bind(ctx, stream.stream), methods=["GET"]),
        Route("/api/ledger/import", _bind(ctx, imports.append_events), methods=["POST"]),
        Route("/api/ledger/import/known", _bind(ctx, imports.known_events), methods=["POST"]),
        Route("/api/sql", _bind(ctx, sql_queries.sql), methods=["POST"]),
        Route("/api/ledger/webhooks", _bind(ctx, webhooks.all_webhooks), methods=["GET"]),
        Route(
            "/api/ledger/webhooks/{webhook_id}/deliveries", _bind(ctx, webhooks.deliveries), methods=["GET"]
        ),
    ]
    if ctx.settings.auth:  # MLflow's auth API; its user routes are in the MLflow dispatcher
        routes += auth_routes.routes(ctx)
    if (Path(__file__).parent / "web" / "__init__.py").exists():  # the web UI, mounted at / when present
        from trackledger.api import web

        routes += web.routes(ctx)
    return routes


def create_app(settings: Settings) -> Starlette:
    ctx = ServerContext(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await run_in_threadpool(ctx.open)
        try:
            yield
        finally:
            await run_in_threadpool(ctx.close)

    app = Starlette(
        routes=_routes(ctx),
        # A request for another Host, or a browser's write from another site, is refused first;
        # then who the request is (an anonymous body is never read), then the body's size cap.
        middleware=[
            Middleware(MergeLeadingSlashes),
            Middleware(AllowedHosts, patterns=allowed_host_patterns(settings.host, settings.allowed_hosts)),
            Middleware(SameSiteWrites),
            Middleware(AuthMiddleware, ctx=ctx),
            Middleware(BodyLimit, limit=settings.max_body_mb * 1024 * 1024),
        ],
        lifespan=lifespan,
        exception_handlers={
            MlflowError: _mlflow_error,
            InvalidQuery: _invalid_query,
            ProjectionUnavailable: _projection_unavailable,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.state.ctx = ctx
    return app
