"""MLflow 3 logged models and the model registry subset the client uses to load ``models:/``."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from api import protocol as p
from api import validation as v
from api.errors import already_exists, invalid, missing, not_found
from api.http import body_as, fix_metric_values, json_response, origin_of, query
from api.threads import blocking
from api.tracking import now_ms
from ledger.events import (
    LoggedModelCreated,
    LoggedModelDeleted,
    LoggedModelTagDeleted,
    LoggedModelTagsSet,
    LoggedModelUpdated,
    ModelVersionCreated,
    Param,
    RegisteredModelAliasDeleted,
    RegisteredModelAliasSet,
    RegisteredModelCreated,
    Tag,
)

MODEL_STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def _read(ctx, fn, *args, **kwargs):
    ctx.projection.flush()  # read-your-writes
    return fn(*args, **kwargs)


def _fix(model: dict | None) -> dict | None:
    if model:
        fix_metric_values(model.get("data", {}).get("metrics"))
    return model


def _kv_tags(items) -> list[Tag]:
    return [Tag(v.check_key(t.key), v.tag_value(t.value)) for t in items]


async def _model_response(ctx, model_id: str):
    model = await blocking(_read, ctx, ctx.projection.logged_model, model_id)
    if model is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return json_response({"model": _fix(model)})


def _known_model(ctx, model_id: str) -> str:
    """The model's experiment id (called under the write lock)."""
    index = ctx.writes.index
    if model_id not in index.logged_models:
        ctx.projection.flush()
        model = ctx.projection.logged_model(model_id)
        if model is None:
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        index.logged_models[model_id] = model["info"]["experiment_id"]
    return index.logged_models[model_id]


# Logged models -----------------------------------------------------------------------


async def create_logged_model(ctx, request: Request):
    req = await body_as(request, p.CreateLoggedModel)
    experiment_id = v.experiment_id(req.experiment_id)
    origin = origin_of(request)
    model_id = "m-" + (origin.derived_id("model") or uuid.uuid4().hex)
    params = [Param(v.check_key(x.key), v.param_value(x.value)) for x in req.params]
    tags = _kv_tags(req.tags)
    writes = ctx.writes

    def build(envelope):
        exp = writes.experiment(experiment_id)
        if req.source_run_id:
            writes.known_run(req.source_run_id)
        if model_id in writes.index.logged_models:
            return []
        location = f"{exp.artifact_location.rstrip('/')}/models/{model_id}/artifacts"
        keys = envelope(0, experiment_id=experiment_id, run_id=req.source_run_id, model_id=model_id)
        return [
            LoggedModelCreated(
                **keys,
                name=req.name or f"model-{model_id[2:10]}",
                artifact_location=location,
                creation_time=now_ms(),
                source_run_id=req.source_run_id,
                model_type=req.model_type or "",
                params=params,
                tags=tags,
            )
        ]

    await blocking(writes.commit, origin, build)
    return await _model_response(ctx, model_id)


async def get_logged_model(ctx, request: Request, model_id: str):
    return await _model_response(ctx, model_id)


async def finalize_logged_model(ctx, request: Request, model_id: str):
    req = await body_as(request, p.FinalizeLoggedModel)
    if req.status not in MODEL_STATUSES:
        raise invalid(f"Invalid value {req.status!r} for parameter 'status' supplied.")

    def build(envelope):
        experiment_id = _known_model(ctx, model_id)
        return [
            LoggedModelUpdated(
                **envelope(0, experiment_id=experiment_id, model_id=model_id), status=req.status
            )
        ]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return await _model_response(ctx, model_id)


async def set_logged_model_tags(ctx, request: Request, model_id: str):
    req = await body_as(request, p.SetLoggedModelTags)
    tags = _kv_tags(req.tags)

    def build(envelope):
        experiment_id = _known_model(ctx, model_id)
        return [LoggedModelTagsSet(**envelope(0, experiment_id=experiment_id, model_id=model_id), tags=tags)]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return json_response()


async def delete_logged_model_tag(ctx, request: Request, model_id: str, key: str):
    def build(envelope):
        experiment_id = _known_model(ctx, model_id)
        return [LoggedModelTagDeleted(**envelope(0, experiment_id=experiment_id, model_id=model_id), key=key)]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return json_response()


async def delete_logged_model(ctx, request: Request, model_id: str):
    def build(envelope):
        experiment_id = _known_model(ctx, model_id)
        return [LoggedModelDeleted(**envelope(0, experiment_id=experiment_id, model_id=model_id))]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return json_response()


async def search_logged_models(ctx, request: Request):
    req = await body_as(request, p.SearchLoggedModels)
    experiment_ids = [v.experiment_id(e) for e in req.experiment_ids]
    models, token = await blocking(
        _read,
        ctx,
        ctx.projection.search_logged_models,
        experiment_ids,
        filter=req.filter or "",
        order_by=tuple(req.order_by),
        max_results=req.max_results,
        page_token=req.page_token,
    )
    out: dict = {}
    if models:
        out["models"] = [_fix(m) for m in models]
    if token:
        out["next_page_token"] = token
    return json_response(out)


# Registry ----------------------------------------------------------------------------


def _latest_version(ctx, name: str) -> int | None:
    """The newest version number of a registered model, None if it does not exist (under the lock)."""
    index = ctx.writes.index
    if name not in index.registered_versions:
        ctx.projection.flush()
        found = ctx.projection.registered_model(name)
        if found is None:
            return None
        versions = [int(mv["version"]) for mv in found.get("latest_versions", [])]
        index.registered_versions[name] = max(versions, default=0)
    return index.registered_versions[name]


async def create_registered_model(ctx, request: Request):
    req = await body_as(request, p.CreateRegisteredModel)
    if not req.name:
        raise missing("name")
    tags = _kv_tags(req.tags)

    def build(envelope):
        if _latest_version(ctx, req.name) is not None:
            raise already_exists(f"Registered Model (name={req.name}) already exists.")
        return [RegisteredModelCreated(**envelope(0), name=req.name, description=req.description, tags=tags)]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return await _registered_model_response(ctx, req.name)


async def _registered_model_response(ctx, name: str):
    model = await blocking(_read, ctx, ctx.projection.registered_model, name)
    if model is None:
        raise not_found(f"Registered Model with name={name} not found")
    return json_response({"registered_model": model})


async def get_registered_model(ctx, request: Request):
    name = query(request, "name")
    if not name:
        raise missing("name")
    return await _registered_model_response(ctx, name)


async def create_model_version(ctx, request: Request):
    req = await body_as(request, p.CreateModelVersion)
    if not req.name:
        raise missing("name")
    if not req.source:
        raise missing("source")
    tags = _kv_tags(req.tags)
    created: list[int] = []

    def build(envelope):
        latest = _latest_version(ctx, req.name)
        if latest is None:
            raise not_found(f"Registered Model with name={req.name} not found")
        run_id = req.run_id
        if req.model_id and not run_id:
            _known_model(ctx, req.model_id)
            run_id = (ctx.projection.logged_model(req.model_id) or {}).get("info", {}).get("source_run_id")
        created.append(latest + 1)
        keys = envelope(0, run_id=run_id, model_id=req.model_id)
        return [
            ModelVersionCreated(
                **keys,
                name=req.name,
                version=latest + 1,
                source=req.source,
                description=req.description,
                tags=tags,
            )
        ]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return await _model_version_response(ctx, req.name, str(created[0]))


async def _model_version_response(ctx, name: str, version: str):
    mv = await blocking(_read, ctx, ctx.projection.model_version, name, version)
    if mv is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return json_response({"model_version": mv})


def _name_version(request: Request) -> tuple[str, str]:
    name, version = query(request, "name"), query(request, "version")
    if not name:
        raise missing("name")
    if not version:
        raise missing("version")
    return name, version


async def get_model_version(ctx, request: Request):
    return await _model_version_response(ctx, *_name_version(request))


async def get_download_uri(ctx, request: Request):
    name, version = _name_version(request)

    def read():
        ctx.projection.flush()
        mv = ctx.projection.model_version(name, version)
        if mv is None:
            raise not_found(f"Model Version (name={name}, version={version}) not found")
        source = mv["source"]
        if source.startswith("models:/m-"):
            model = ctx.projection.logged_model(source.removeprefix("models:/").split("/")[0])
            if model is not None:
                return model["info"]["artifact_uri"]
        return source

    return json_response({"artifact_uri": await blocking(read)})


async def set_alias(ctx, request: Request):
    req = await body_as(request, p.SetAlias)
    if not req.name or not req.alias or not req.version:
        raise missing("name" if not req.name else "alias" if not req.alias else "version")
    if not req.version.isdigit():
        raise invalid(f"Model version must be an integer, got '{req.version}'")

    def build(envelope):
        latest = _latest_version(ctx, req.name)
        if latest is None or int(req.version) > latest or int(req.version) < 1:
            raise not_found(f"Model Version (name={req.name}, version={req.version}) not found")
        return [
            RegisteredModelAliasSet(**envelope(0), name=req.name, key=req.alias, version=int(req.version))
        ]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return json_response()


async def get_by_alias(ctx, request: Request):
    name, alias = query(request, "name"), query(request, "alias")
    if not name or not alias:
        raise missing("name" if not name else "alias")
    mv = await blocking(_read, ctx, ctx.projection.model_version_by_alias, name, alias)
    if mv is None:
        raise not_found(f"Registered model alias {alias} not found.")
    return json_response({"model_version": mv})


async def delete_alias(ctx, request: Request):
    req = await body_as(request, p.SetAlias)
    name = req.name or query(request, "name")
    alias = req.alias or query(request, "alias")
    if not name or not alias:
        raise missing("name" if not name else "alias")

    def build(envelope):
        if _latest_version(ctx, name) is None:
            raise not_found(f"Registered Model with name={name} not found")
        return [RegisteredModelAliasDeleted(**envelope(0), name=name, key=alias)]

    await blocking(ctx.writes.commit, origin_of(request), build)
    return json_response()


ROUTES = {
    ("POST", "logged-models"): create_logged_model,
    ("POST", "logged-models/search"): search_logged_models,
    ("POST", "registered-models/create"): create_registered_model,
    ("GET", "registered-models/get"): get_registered_model,
    ("POST", "model-versions/create"): create_model_version,
    ("GET", "model-versions/get"): get_model_version,
    ("GET", "model-versions/get-download-uri"): get_download_uri,
    ("POST", "registered-models/alias"): set_alias,
    ("GET", "registered-models/alias"): get_by_alias,
    ("DELETE", "registered-models/alias"): delete_alias,
}

# Routes with a model id in the path: (method, pattern) -> handler; patterns are regexes.
PATTERN_ROUTES = {
    ("GET", r"logged-models/(?P<model_id>[^/]+)"): get_logged_model,
    ("PATCH", r"logged-models/(?P<model_id>[^/]+)"): finalize_logged_model,
    ("DELETE", r"logged-models/(?P<model_id>[^/]+)"): delete_logged_model,
    ("PATCH", r"logged-models/(?P<model_id>[^/]+)/tags"): set_logged_model_tags,
    ("DELETE", r"logged-models/(?P<model_id>[^/]+)/tags/(?P<key>.+)"): delete_logged_model_tag,
}
