"""MLflow 3 logged models: create, get, finalize, tags, delete, search."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from trackledger.api import protocol, validation, writes
from trackledger.api.auth.guard import readable
from trackledger.api.errors import invalid, missing, not_found
from trackledger.api.http import body_as, json_response, metrics_for_json, origin_of
from trackledger.api.threads import read_after_writes
from trackledger.ledger.events import Param, Tag
from trackledger.projections import logged_models as logged_model_reads
from trackledger.projections.logged_models import DatasetFilter, ModelOrderBy

MODEL_STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def _kv_tags(items) -> list[Tag]:
    return [Tag(validation.check_key(t.key), validation.tag_value(t.value)) for t in items]


async def _model_response(ctx, model_id: str):
    model = await read_after_writes(ctx, ctx.projection.query, logged_model_reads.logged_model, model_id)
    if model is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return json_response({"model": metrics_for_json(model)})


async def create_logged_model(ctx, request: Request):
    req = await body_as(request, protocol.CreateLoggedModel)
    experiment_id = validation.experiment_id(req.experiment_id)
    origin = origin_of(request)
    model_id = "m-" + (origin.derived_id("model") or uuid.uuid4().hex)
    params = [Param(validation.check_key(x.key), validation.param_value(x.value)) for x in req.params]
    tags = _kv_tags(req.tags)
    await ctx.writes.commit_off_loop(
        origin,
        writes.logged_models.create,
        model_id,
        experiment_id,
        req.name,
        req.model_type,
        req.source_run_id,
        params,
        tags,
    )
    return await _model_response(ctx, model_id)


async def get_logged_model(ctx, request: Request, model_id: str):
    return await _model_response(ctx, model_id)


async def finalize_logged_model(ctx, request: Request, model_id: str):
    req = await body_as(request, protocol.FinalizeLoggedModel)
    if req.status not in MODEL_STATUSES:
        raise invalid(f"Invalid value {req.status!r} for parameter 'status' supplied.")
    await ctx.writes.commit_off_loop(origin_of(request), writes.logged_models.finalize, model_id, req.status)
    return await _model_response(ctx, model_id)


async def set_logged_model_tags(ctx, request: Request, model_id: str):
    req = await body_as(request, protocol.SetLoggedModelTags)
    tags = _kv_tags(req.tags)
    await ctx.writes.commit_off_loop(origin_of(request), writes.logged_models.set_tags, model_id, tags)
    return json_response()


async def log_logged_model_params(ctx, request: Request, model_id: str):
    req = await body_as(request, protocol.LogLoggedModelParams)
    params = [Param(validation.check_key(x.key), validation.param_value(x.value)) for x in req.params]
    await ctx.writes.commit_off_loop(origin_of(request), writes.logged_models.log_params, model_id, params)
    return json_response()


async def delete_logged_model_tag(ctx, request: Request, model_id: str, key: str):
    await ctx.writes.commit_off_loop(origin_of(request), writes.logged_models.delete_tag, model_id, key)
    return json_response()


async def delete_logged_model(ctx, request: Request, model_id: str):
    await ctx.writes.commit_off_loop(origin_of(request), writes.logged_models.delete, model_id)
    return json_response()


async def search_logged_models(ctx, request: Request):
    req = await body_as(request, protocol.SearchLoggedModels)
    experiment_ids = readable(ctx, request, [validation.experiment_id(e) for e in req.experiment_ids])
    if any(not d.dataset_name for d in req.datasets):
        raise invalid("`dataset_name` in the `datasets` clause must be specified.")
    if any(not o.field_name for o in req.order_by):
        raise missing("order_by.field_name")
    order_by = [
        ModelOrderBy(o.field_name, o.ascending, o.dataset_name, o.dataset_digest) for o in req.order_by
    ]
    if not experiment_ids and req.experiment_ids:
        return json_response({})
    models, token = await read_after_writes(
        ctx,
        ctx.projection.query,
        logged_model_reads.search_logged_models,
        experiment_ids,
        filter=req.filter or "",
        order_by=order_by,
        max_results=req.max_results,
        page_token=req.page_token,
        datasets=[DatasetFilter(d.dataset_name, d.dataset_digest) for d in req.datasets],
    )
    out: dict = {}
    if models:
        out["models"] = [metrics_for_json(m) for m in models]
    if token:
        out["next_page_token"] = token
    return json_response(out)


ROUTES = {
    ("POST", "logged-models"): create_logged_model,
    ("POST", "logged-models/search"): search_logged_models,
}

# Routes with a model id in the path: (method, pattern) -> handler; patterns are regexes.
PATTERN_ROUTES = {
    ("GET", r"logged-models/(?P<model_id>[^/]+)"): get_logged_model,
    ("PATCH", r"logged-models/(?P<model_id>[^/]+)"): finalize_logged_model,
    ("DELETE", r"logged-models/(?P<model_id>[^/]+)"): delete_logged_model,
    ("PATCH", r"logged-models/(?P<model_id>[^/]+)/tags"): set_logged_model_tags,
    ("POST", r"logged-models/(?P<model_id>[^/]+)/params"): log_logged_model_params,
    ("DELETE", r"logged-models/(?P<model_id>[^/]+)/tags/(?P<key>.+)"): delete_logged_model_tag,
}
