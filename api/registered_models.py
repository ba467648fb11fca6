"""MLflow's model registry: registered models, their tags, aliases and searches, and what the
registry's endpoints share (``model_versions`` has the versions' endpoints)."""

from __future__ import annotations

import functools

from starlette.requests import Request
from trackledger.api import protocol, validation, writes
from trackledger.api.auth.guard import scope_of
from trackledger.api.errors import invalid, missing, not_found
from trackledger.api.http import body_as, fields_as, json_response, origin_of, query
from trackledger.api.threads import read_after_writes
from trackledger.ledger.events import Tag
from trackledger.projections import registry as registry_reads

MODELS_MAX_RESULTS = (100, 1000)  # MLflow's default and cap for a page of registered models
VERSIONS_MAX_RESULTS = (10_000, 200_000)  # ... and of model versions


def registry_tags(items) -> list[Tag]:
    return [Tag(validation.check_key(t.key), validation.registry_tag_value(t.value)) for t in items]


async def _model_response(ctx, name: str):
    model = await read_after_writes(ctx, ctx.projection.query, registry_reads.registered_model, name)
    if model is None:
        raise not_found(f"Registered Model with name={name} not found")
    return json_response({"registered_model": model})


def name_version(req) -> tuple[str, int]:
    validation.required(req, "name", "version")
    return req.name, validation.model_version(req.version)


# Registered models ----------------------------------------------------------------------


async def create_registered_model(ctx, request: Request):
    req = await body_as(request, protocol.CreateRegisteredModel)
    name = validation.model_name(req.name)
    tags = registry_tags(req.tags)
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.registered_models.create, name, req.description, tags
    )
    return await _model_response(ctx, name)


async def get_registered_model(ctx, request: Request):
    name = query(request, "name")
    if not name:
        raise missing("name")
    return await _model_response(ctx, name)


async def rename_registered_model(ctx, request: Request):
    req = await fields_as(request, protocol.RenameRegisteredModel)
    validation.required(req, "name", "new_name")
    new_name = validation.model_name(req.new_name, "new_name")
    await ctx.writes.commit_off_loop(origin_of(request), writes.registered_models.rename, req.name, new_name)
    return await _model_response(ctx, new_name)


async def update_registered_model(ctx, request: Request):
    req = await fields_as(request, protocol.UpdateRegisteredModel)
    validation.required(req, "name")
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.registered_models.update, req.name, req.description
    )
    return await _model_response(ctx, req.name)


async def delete_registered_model(ctx, request: Request):
    req = await fields_as(request, protocol.RegisteredModelRef)
    validation.required(req, "name")
    await ctx.writes.commit_off_loop(origin_of(request), writes.registered_models.delete, req.name)
    return json_response()


def _max_results(request: Request, value: int | None, limits: tuple[int, int]) -> int:
    default, cap = limits
    if value is None:
        return default
    validation.at_most("max_results", request.query_params.get("max_results", value), cap)
    if value < 1:
        raise invalid(f"Invalid value for max_results. It must be a positive integer, but got {value}")
    return value


async def search_page(ctx, request: Request, find, limits: tuple[int, int], field: str):
    """A page of ``find`` (a projection's registry search) as the response ``field``."""
    req = await fields_as(request, protocol.SearchRegistry, repeated=("order_by",))
    found, token = await read_after_writes(
        ctx,
        find,
        filter=req.filter or None,
        order_by=tuple(req.order_by),
        max_results=_max_results(request, req.max_results, limits),
        page_token=req.page_token or None,
        scope=scope_of(ctx, request),
    )
    out: dict = {}
    if found:
        out[field] = found
    if token:
        out["next_page_token"] = token
    return json_response(out)


async def search_registered_models(ctx, request: Request):
    find = functools.partial(ctx.projection.query, registry_reads.search_registered_models)
    return await search_page(ctx, request, find, MODELS_MAX_RESULTS, "registered_models")


async def get_latest_versions(ctx, request: Request):
    req = await fields_as(request, protocol.GetLatestVersions, repeated=("stages",))
    validation.required(req, "name")
    versions = await read_after_writes(
        ctx, ctx.projection.query, registry_reads.latest_versions, req.name, tuple(req.stages)
    )
    if versions is None:
        raise not_found(f"Registered Model with name={req.name} not found")
    return json_response({"model_versions": versions} if versions else None)


async def set_registered_model_tag(ctx, request: Request):
    req = await fields_as(request, protocol.RegisteredModelTag)
    validation.required(req, "name", "key")
    key, value = validation.check_key(req.key), validation.registry_tag_value(req.value)
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.registered_models.set_tag, req.name, key, value
    )
    return json_response()


async def delete_registered_model_tag(ctx, request: Request):
    req = await fields_as(request, protocol.RegisteredModelTag)
    validation.required(req, "name", "key")
    key = validation.check_key(req.key)
    await ctx.writes.commit_off_loop(origin_of(request), writes.registered_models.delete_tag, req.name, key)
    return json_response()


# Aliases --------------------------------------------------------------------------------


async def set_alias(ctx, request: Request):
    req = await body_as(request, protocol.SetAlias)
    validation.required(req, "name", "alias", "version")
    alias = validation.alias_name(req.alias)
    name, version = name_version(req)
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.registered_models.set_alias, name, alias, version
    )
    return json_response()


async def get_by_alias(ctx, request: Request):
    name, alias = query(request, "name"), query(request, "alias")
    if not name or not alias:
        raise missing("name" if not name else "alias")

    def find():
        mv = ctx.projection.query(registry_reads.model_version_by_alias, name, alias)
        if mv is not None:
            return mv
        if ctx.projection.query(registry_reads.registered_model, name) is None:
            raise not_found(f"Registered Model with name={name} not found")
        if alias.lower() == "latest":
            raise not_found(f"Latest version not found for model {name}.")
        raise invalid(f"Registered model alias {alias} not found.")

    return json_response({"model_version": await read_after_writes(ctx, find)})


async def delete_alias(ctx, request: Request):
    req = await fields_as(request, protocol.SetAlias)
    validation.required(req, "name", "alias")
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.registered_models.delete_alias, req.name, req.alias
    )
    return json_response()


ROUTES = {
    ("POST", "registered-models/create"): create_registered_model,
    ("GET", "registered-models/get"): get_registered_model,
    ("POST", "registered-models/rename"): rename_registered_model,
    ("PATCH", "registered-models/update"): update_registered_model,
    ("DELETE", "registered-models/delete"): delete_registered_model,
    ("GET", "registered-models/search"): search_registered_models,
    ("POST", "registered-models/get-latest-versions"): get_latest_versions,
    ("GET", "registered-models/get-latest-versions"): get_latest_versions,
    ("POST", "registered-models/set-tag"): set_registered_model_tag,
    ("DELETE", "registered-models/delete-tag"): delete_registered_model_tag,
    ("POST", "registered-models/alias"): set_alias,
    ("GET", "registered-models/alias"): get_by_alias,
    ("DELETE", "registered-models/alias"): delete_alias,
}
