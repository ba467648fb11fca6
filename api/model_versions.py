"""MLflow's model versions: create, get, update, stage transitions, delete, tags, search and
the download URI."""

from __future__ import annotations

import functools

from starlette.requests import Request
from trackledger.api import protocol, validation, writes
from trackledger.api.errors import invalid, not_found
from trackledger.api.http import body_as, fields_as, json_response, origin_of
from trackledger.api.registered_models import VERSIONS_MAX_RESULTS, name_version, registry_tags, search_page
from trackledger.api.threads import read_after_writes
from trackledger.projections import logged_models as logged_model_reads
from trackledger.projections import registry as registry_reads
from trackledger.projections.registry import canonical_stage

ACTIVE_STAGES = ["Staging", "Production"]  # the stages a transition can archive the others of


async def version_response(ctx, name: str, version: int):
    mv = await read_after_writes(ctx, ctx.projection.query, registry_reads.model_version, name, version)
    if mv is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return json_response({"model_version": mv})


async def create_model_version(ctx, request: Request):
    req = await body_as(request, protocol.CreateModelVersion)
    validation.required(req, "name", "source")
    tags = registry_tags(req.tags)
    created, *_ = await ctx.writes.commit_off_loop(  # or a retry's first attempt's
        origin_of(request),
        writes.model_versions.create,
        req.name,
        req.source,
        req.run_id,
        req.model_id,
        req.description,
        tags,
    )
    return await version_response(ctx, created.name, created.version)


async def get_model_version(ctx, request: Request):
    return await version_response(ctx, *name_version(await fields_as(request, protocol.ModelVersionRef)))


async def update_model_version(ctx, request: Request):
    req = await fields_as(request, protocol.UpdateModelVersion)
    name, version = name_version(req)
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.model_versions.update, name, version, req.description
    )
    return await version_response(ctx, name, version)


async def transition_stage(ctx, request: Request):
    req = await fields_as(request, protocol.TransitionModelVersionStage)
    validation.required(req, "name", "version", "stage")
    stage = canonical_stage(req.stage)
    if req.archive_existing_versions and stage not in ACTIVE_STAGES:
        raise invalid(
            "Model version transition cannot archive existing model versions because "
            f"'{req.stage}' is not an Active stage. Valid stages are {ACTIVE_STAGES}"
        )
    name, version = name_version(req)
    await ctx.writes.commit_off_loop(
        origin_of(request),
        writes.model_versions.transition_stage,
        name,
        version,
        stage,
        archive_others=req.archive_existing_versions,
    )
    return await version_response(ctx, name, version)


async def delete_model_version(ctx, request: Request):
    name, version = name_version(await fields_as(request, protocol.ModelVersionRef))
    await ctx.writes.commit_off_loop(origin_of(request), writes.model_versions.delete, name, version)
    return json_response()


async def search_model_versions(ctx, request: Request):
    find = functools.partial(ctx.projection.query, registry_reads.search_model_versions)
    return await search_page(ctx, request, find, VERSIONS_MAX_RESULTS, "model_versions")


async def get_download_uri(ctx, request: Request):
    name, version = name_version(await fields_as(request, protocol.ModelVersionRef))

    def resolve():
        mv = ctx.projection.query(registry_reads.model_version, name, version)
        if mv is None:
            raise not_found(f"Model Version (name={name}, version={version}) not found")
        source = mv["source"]
        if source.startswith("models:/m-"):
            model = ctx.projection.query(
                logged_model_reads.logged_model, source.removeprefix("models:/").split("/")[0]
            )
            if model is not None:
                return model["info"]["artifact_uri"]
        return source

    return json_response({"artifact_uri": await read_after_writes(ctx, resolve)})


async def set_model_version_tag(ctx, request: Request):
    req = await fields_as(request, protocol.ModelVersionTag)
    validation.required(req, "name", "version", "key")
    name, version = name_version(req)
    key, value = validation.check_key(req.key), validation.registry_tag_value(req.value)
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.model_versions.set_tag, name, version, key, value
    )
    return json_response()


async def delete_model_version_tag(ctx, request: Request):
    req = await fields_as(request, protocol.ModelVersionTag)
    validation.required(req, "name", "version", "key")
    name, version = name_version(req)
    key = validation.check_key(req.key)
    await ctx.writes.commit_off_loop(origin_of(request), writes.model_versions.delete_tag, name, version, key)
    return json_response()


ROUTES = {
    ("POST", "model-versions/create"): create_model_version,
    ("GET", "model-versions/get"): get_model_version,
    ("PATCH", "model-versions/update"): update_model_version,
    ("POST", "model-versions/transition-stage"): transition_stage,
    ("DELETE", "model-versions/delete"): delete_model_version,
    ("GET", "model-versions/search"): search_model_versions,
    ("GET", "model-versions/get-download-uri"): get_download_uri,
    ("POST", "model-versions/set-tag"): set_model_version_tag,
    ("DELETE", "model-versions/delete-tag"): delete_model_version_tag,
}
