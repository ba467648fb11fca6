"""The web page served at ``/``: experiments, runs, comparison, audit history and SQL.

Server-rendered with Jinja2, a little plain JavaScript, plotly.js from the installed package:
no build step and no network access needed in the browser.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from trackledger.api.context import ServerContext
from trackledger.api.web import previews
from trackledger.api.web.account_pages import admin_page, login, login_form, logout
from trackledger.api.web.assets import asset_routes
from trackledger.api.web.audit_pages import audit_page, sql_page
from trackledger.api.web.chart_pages import chart_view_data, chart_view_page, json_read
from trackledger.api.web.experiment_pages import experiment_page, experiments_page
from trackledger.api.web.model_pages import model_page, models_page
from trackledger.api.web.pages import page
from trackledger.api.web.run_pages import compare_page, run_page
from trackledger.api.web.templating import error_page
from trackledger.api.web.webhook_pages import webhooks_page

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def page_not_found(request: Request) -> Response:
    """A person gets a page; API clients keep the MLflow-style JSON 404 of the app's error handler."""
    wants_html = "text/html" in request.headers.get("accept", "")
    if request.method != "GET" or not wants_html or request.url.path.startswith(("/api/", "/ajax-api/")):
        raise HTTPException(404, f"No API endpoint {request.url.path}")
    return error_page(
        request,
        404,
        "Page not found",
        f"Nothing lives at {request.url.path}.",
        "The links at the top lead to the experiments, the audit history and the SQL page.",
    )


def _bind(ctx: ServerContext, fn):
    async def endpoint(request: Request) -> Response:
        return await fn(ctx, request)

    return endpoint


def routes(ctx: ServerContext) -> list[BaseRoute]:
    return [
        Route("/", page(ctx, experiments_page), name="web_experiments"),
        Route("/experiments/{experiment_id}", page(ctx, experiment_page), name="web_experiment"),
        Route("/experiments/{experiment_id}/charts", page(ctx, chart_view_page), name="web_charts"),
        Route(
            "/experiments/{experiment_id}/charts/data", json_read(ctx, chart_view_data), name="web_chart_data"
        ),
        Route("/runs/{run_id}", page(ctx, run_page), name="web_run"),
        Route("/compare", page(ctx, compare_page), name="web_compare"),
        Route("/models", page(ctx, models_page), name="web_models"),
        Route("/models/{name}", page(ctx, model_page), name="web_model"),
        Route("/audit", page(ctx, audit_page), name="web_audit"),
        Route("/sql", page(ctx, sql_page), name="web_sql"),
        Route("/webhooks", page(ctx, webhooks_page), name="web_webhooks"),
        Route("/login", _bind(ctx, login_form), methods=["GET"], name="web_login"),
        Route("/login", _bind(ctx, login), methods=["POST"]),
        Route("/logout", _bind(ctx, logout), methods=["POST"], name="web_logout"),
        Route("/admin", page(ctx, admin_page), name="web_admin"),
        *previews.routes(ctx),
        *asset_routes(),
        Route("/{path:path}", page_not_found, methods=ALL_METHODS),  # last: only what nothing else took
    ]
