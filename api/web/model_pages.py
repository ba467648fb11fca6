"""The model registry in the web page: the Models list (MLflow's registry search, paged) and a
model's page (its aliases and stages, its versions a page at a time with their files, and its
audit history).

The pages only read. Their actions (register, aliases, stages, tags, descriptions) are JSON calls
from ``static/models.js`` to the MLflow REST routes, so they go through the same validation, write
service and permission checks as the mlflow client's, with the page's user as the actor.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response
from trackledger.api.auth.guard import scope_of
from trackledger.api.context import ServerContext
from trackledger.api.validation import integer
from trackledger.api.web import model_reads, reads
from trackledger.api.web.pages import NotFound, permission_test
from trackledger.api.web.templating import render
from trackledger.api.web.views import key_values
from trackledger.projections import InvalidQuery
from trackledger.projections import registry as registry_reads
from trackledger.projections.search import MAX_ROWS, encode_page_token

MODELS_PER_PAGE = 25
VERSIONS_PER_PAGE = 25  # a version is a card: the runs table's smallest page
MODEL_HISTORY_LIMIT = 1_000
STAGES = registry_reads.STAGES


def models_page(ctx: ServerContext, request: Request) -> Response:
    query = request.query_params
    filter_text = query.get("filter", "").strip()
    page = max(1, integer(query.get("page")) or 1)
    offset = min((page - 1) * MODELS_PER_PAGE, MAX_ROWS)
    models, has_next, error = [], False, ""
    try:
        found, token = ctx.projection.query(
            registry_reads.search_registered_models,
            filter=filter_text or None,
            max_results=MODELS_PER_PAGE,
            page_token=encode_page_token(offset) if offset else None,
            scope=scope_of(ctx, request),  # a non-admin finds only the models they may read
        )
    except InvalidQuery as exc:
        error = str(exc)
    else:
        models, has_next = [_model_row(m) for m in found], token is not None
    return render(
        request,
        "models.html",
        section="models",
        models=models,
        filter=filter_text,
        error=error,
        page=page,
        has_next=has_next,
    )


def _model_row(model: dict) -> dict:
    return {
        "name": model["name"],
        "description": model.get("description", ""),
        "latest": [(v["version"], v["current_stage"]) for v in model.get("latest_versions", [])],
        "aliases": [(a["alias"], a["version"]) for a in model.get("aliases", [])],
        "tags": key_values(model.get("tags")),
        "last_updated": model.get("last_updated_timestamp"),
    }


def model_page(ctx: ServerContext, request: Request) -> Response:
    name = request.path_params["name"]
    model = ctx.projection.query(registry_reads.registered_model, name)
    key = model_reads.model_key(ctx, name)
    if model is None or key is None:  # also a model the reader may not read: nothing tells it exists
        raise NotFound(
            "Model not found",
            f"There is no registered model named {name!r} that you may read.",
            "The Models page lists every registered model you may read.",
        )
    page = max(1, integer(request.query_params.get("page")) or 1)
    offset = min((page - 1) * VERSIONS_PER_PAGE, MAX_ROWS)
    found, total = ctx.projection.query(
        registry_reads.model_versions_page,
        name,
        offset,
        VERSIONS_PER_PAGE,
        scope=scope_of(ctx, request),  # only the versions of a model the reader may read
    )
    creators = model_reads.version_creators(ctx, key, [int(v["version"]) for v in found])
    files = model_reads.version_files(ctx, found)
    versions = [
        {
            **version,
            "description": version.get("description", ""),
            "model_id": version.get("model_id", ""),
            "tags": key_values(version.get("tags")),
            "aliases": version.get("aliases", []),
            "created_by": creators.get(int(version["version"]), {"actor": "", "verified": False}),
            "files": files[version["version"]],
        }
        for version in found
    ]
    aliases = [(a["alias"], int(a["version"])) for a in model.get("aliases", [])]
    latest = [(v["current_stage"], int(v["version"])) for v in model.get("latest_versions", [])]
    pages = model_reads.version_pages(ctx, key, [v for _, v in aliases + latest], VERSIONS_PER_PAGE)
    return render(
        request,
        "model.html",
        section="models",
        model={
            "name": model["name"],
            "description": model.get("description", ""),
            "tags": key_values(model.get("tags")),
            "created": model.get("creation_timestamp"),
            "last_updated": model.get("last_updated_timestamp"),
            "aliases": [(alias, version, pages[version]) for alias, version in aliases],
            "latest": [(stage, version, pages[version]) for stage, version in latest],
        },
        versions=versions,
        total_versions=total,
        page=page,
        pages=max(1, math.ceil(total / VERSIONS_PER_PAGE)),
        first=offset + 1 if versions else 0,
        last=offset + len(versions),
        stages=STAGES,
        may=permission_test(ctx, request, name=model["name"]),
        events=reads.model_events(ctx, key, MODEL_HISTORY_LIMIT),
        events_empty="No events recorded for this model.",
    )
