"""MLflow's model versions: create, get, update, stage transitions, delete, tags, search and
the download URI. A transition that archives the other versions of its stage names them in its
events, so the projection needs no state to apply it."""

from __future__ import annotations

from starlette.requests import Request
from trackledger.api import protocol as p
from trackledger.api import validation as v
from trackledger.api.errors import invalid, not_found
from trackledger.api.http import body_as, fields_as, json_response, origin_of
from trackledger.api.models import known_model
from trackledger.api.registry import (
    VERSIONS_MAX_RESULTS,
    commit,
    live_version,
    model_entry,
    name_version,
    registry_tags,
    search_page,
)
from trackledger.api.threads import blocking, fresh
from trackledger.ledger.events import (
    ModelVersionCreated,
    ModelVersionDeleted,
    ModelVersionStageChanged,
    ModelVersionTagDeleted,
    ModelVersionTagSet,
    ModelVersionUpdated,
)
from trackledger.projections.registry import canonical_stage

ACTIVE_STAGES = ["Staging", "Production"]  # the stages a transition can archive the others of


async def version_response(ctx, name: str, version: int):
    mv = await fresh(ctx, ctx.projection.model_version, name, version)
    if mv is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return json_response({"model_version": mv})


async def create_model_version(ctx, request: Request):
    req = await body_as(request, p.CreateModelVersion)
    v.required(req, "name", "source")
    tags = registry_tags(req.tags)

    def build(envelope):
        model = model_entry(ctx, req.name)
        run_id = req.run_id
        if req.model_id and not run_id:
            known_model(ctx, req.model_id)
            run_id = ctx.writes.source_run(req.model_id)
        return [
            ModelVersionCreated(
                **envelope(0, run_id=run_id, model_id=req.model_id),
                name=req.name,
                version=model.latest_version + 1,
                source=req.source,
                description=req.description,
                tags=tags,
                registered_model_id=model.key,
            )
        ]

    (created,) = await blocking(ctx.writes.commit, origin_of(request), build)  # or a retry's first
    return await version_response(ctx, created.name, created.version)


async def get_model_version(ctx, request: Request):
    return await version_response(ctx, *name_version(await fields_as(request, p.ModelVersionRef)))


async def update_model_version(ctx, request: Request):
    req = await fields_as(request, p.UpdateModelVersion)
    name, version = name_version(req)

    def build(envelope):
        model = live_version(ctx, name, version)
        return [
            ModelVersionUpdated(
                **envelope(0),
                name=name,
                version=version,
                description=req.description,
                registered_model_id=model.key,
            )
        ]

    await commit(ctx, request, build)
    return await version_response(ctx, name, version)


async def transition_stage(ctx, request: Request):
    req = await fields_as(request, p.TransitionModelVersionStage)
    v.required(req, "name", "version", "stage")
    stage = canonical_stage(req.stage)
    if req.archive_existing_versions and stage not in ACTIVE_STAGES:
        raise invalid(
            "Model version transition cannot archive existing model versions because "
            f"'{req.stage}' is not an Active stage. Valid stages are {ACTIVE_STAGES}"
        )
    name, version = name_version(req)

    def build(envelope):
        model = live_version(ctx, name, version)
        others = []
        if req.archive_existing_versions:
            others = sorted(n for n, s in model.stages.items() if s == stage and n != version)
        changes = [(version, stage)] + [(n, "Archived") for n in others]
        return [
            ModelVersionStageChanged(
                **envelope(i), name=name, version=n, stage=s, registered_model_id=model.key
            )
            for i, (n, s) in enumerate(changes)
        ]

    await commit(ctx, request, build)
    return await version_response(ctx, name, version)


async def delete_model_version(ctx, request: Request):
    name, version = name_version(await fields_as(request, p.ModelVersionRef))

    def build(envelope):
        model = live_version(ctx, name, version)
        return [ModelVersionDeleted(**envelope(0), name=name, version=version, registered_model_id=model.key)]

    await commit(ctx, request, build)
    return json_response()


async def search_model_versions(ctx, request: Request):
    find = ctx.projection.search_model_versions
    return await search_page(ctx, request, find, VERSIONS_MAX_RESULTS, "model_versions")


async def get_download_uri(ctx, request: Request):
    name, version = name_version(await fields_as(request, p.ModelVersionRef))

    def resolve():
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

    return json_response({"artifact_uri": await blocking(resolve)})


async def set_model_version_tag(ctx, request: Request):
    req = await fields_as(request, p.ModelVersionTag)
    v.required(req, "name", "version", "key")
    name, version = name_version(req)
    key, value = v.check_key(req.key), v.registry_tag_value(req.value)

    def build(envelope):
        model = live_version(ctx, name, version)
        keys = {"name": name, "version": version, "key": key, "registered_model_id": model.key}
        return [ModelVersionTagSet(**envelope(0), **keys, value=value)]

    await commit(ctx, request, build)
    return json_response()


async def delete_model_version_tag(ctx, request: Request):
    req = await fields_as(request, p.ModelVersionTag)
    v.required(req, "name", "version", "key")
    name, version = name_version(req)
    key = v.check_key(req.key)

    def build(envelope):
        model = live_version(ctx, name, version)
        keys = {"name": name, "version": version, "key": key, "registered_model_id": model.key}
        return [ModelVersionTagDeleted(**envelope(0), **keys)]

    await commit(ctx, request, build)
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
