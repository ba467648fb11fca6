"""MLflow experiment endpoints: create, get, get-by-name, search, update, delete, restore, tags."""

from __future__ import annotations

from starlette.requests import Request
from trackledger.api import protocol as p
from trackledger.api import validation as v
from trackledger.api.errors import MlflowError, already_exists, invalid, missing, not_found
from trackledger.api.http import body_as, json_response, origin_of, query
from trackledger.api.threads import blocking, fresh
from trackledger.api.tracking import now_ms
from trackledger.ledger.events import (
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    ExperimentTagDeleted,
    ExperimentTagSet,
    Tag,
)

VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")


def _tag(key, value) -> Tag:
    v.check_key(key)
    value = value or ""
    if len(value) > v.MAX_EXPERIMENT_TAG_VAL_LENGTH:
        raise invalid(f"'value' exceeds the maximum length of {v.MAX_EXPERIMENT_TAG_VAL_LENGTH} characters")
    return Tag(key, value)


async def create(ctx, request: Request):
    req = await body_as(request, p.CreateExperiment)
    name = v.experiment_name(req.name)
    tags = [_tag(t.key, t.value) for t in req.tags]
    custom_location = v.artifact_location(req.artifact_location) if req.artifact_location else None
    writes = ctx.writes

    def build(envelope):
        if name in writes.index.experiment_by_name:
            raise already_exists(f"Experiment(name={name}) already exists.")
        experiment_id = writes.index.next_experiment_id()
        location = custom_location or f"mlflow-artifacts:/{experiment_id}"
        return [
            ExperimentCreated(
                **envelope(0, experiment_id=experiment_id),
                name=name,
                artifact_location=location,
                creation_time=now_ms(),
                tags=tags,
            )
        ]

    events = await blocking(writes.commit, origin_of(request), build)
    return json_response({"experiment_id": events[0].experiment_id})


async def get(ctx, request: Request):
    experiment_id = v.experiment_id(query(request, "experiment_id"))
    exp = await fresh(ctx, ctx.projection.experiment, experiment_id)
    if exp is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return json_response({"experiment": exp})


async def get_by_name(ctx, request: Request):
    name = query(request, "experiment_name")
    if name is None:
        raise missing("experiment_name")
    exp = await fresh(ctx, ctx.projection.experiment_by_name, name)
    if exp is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": exp})


async def search(ctx, request: Request):
    if request.method == "GET":
        params = dict(request.query_params)
        if "order_by" in params:
            params["order_by"] = request.query_params.getlist("order_by")
        req = p.convert(p.SearchExperiments, params)
    else:
        req = await body_as(request, p.SearchExperiments)
    if req.view_type not in VIEW_TYPES:
        raise invalid(f"Invalid view_type '{req.view_type}'. Valid view types are {list(VIEW_TYPES)}")
    v.max_results(req.max_results, at_most=50_000)
    experiments, token = await fresh(
        ctx,
        ctx.projection.search_experiments,
        view_type=req.view_type,
        filter=req.filter or None,
        order_by=tuple(req.order_by),
        max_results=req.max_results,
        page_token=req.page_token,
    )
    out: dict = {}
    if experiments:
        out["experiments"] = experiments
    if token:
        out["next_page_token"] = token
    return json_response(out)


def _lifecycle_change(event_type, from_lifecycle: str):
    async def handler(ctx, request: Request):
        req = await body_as(request, p.ExperimentRef)
        experiment_id = v.experiment_id(req.experiment_id)
        writes = ctx.writes

        def build(envelope):
            # MLflow looks the experiment up among the ones in ``from_lifecycle`` only.
            if writes.experiment(experiment_id).lifecycle != from_lifecycle:
                raise not_found(f"No Experiment with id={experiment_id} exists")
            return [event_type(**envelope(0, experiment_id=experiment_id))]

        await blocking(writes.commit, origin_of(request), build)
        return json_response()

    return handler


delete = _lifecycle_change(ExperimentDeleted, "active")
restore = _lifecycle_change(ExperimentRestored, "deleted")


async def update(ctx, request: Request):
    req = await body_as(request, p.UpdateExperiment)
    experiment_id = v.experiment_id(req.experiment_id)
    writes = ctx.writes

    if not req.new_name:
        raise missing("new_name")

    def build(envelope):
        exp = writes.experiment(experiment_id)
        name = v.experiment_name(req.new_name)
        if exp.lifecycle != "active":
            raise MlflowError("Cannot rename a non-active experiment.", "INVALID_STATE")
        if writes.index.experiment_by_name.get(name, experiment_id) != experiment_id:
            raise MlflowError(f"Experiment(name={name}) already exists.", "BAD_REQUEST")
        if name == exp.name:
            return []
        return [ExperimentRenamed(**envelope(0, experiment_id=experiment_id), name=name)]

    await blocking(writes.commit, origin_of(request), build)
    return json_response()


async def set_tag(ctx, request: Request):
    req = await body_as(request, p.SetExperimentTag)
    experiment_id = v.experiment_id(req.experiment_id)
    tag = _tag(req.key, req.value)
    writes = ctx.writes

    def build(envelope):
        _active(writes.experiment(experiment_id), experiment_id)
        return [ExperimentTagSet(**envelope(0, experiment_id=experiment_id), key=tag.key, value=tag.value)]

    await blocking(writes.commit, origin_of(request), build)
    return json_response()


def _active(exp, experiment_id: str) -> None:
    if exp.lifecycle != "active":
        raise invalid(
            f"The experiment {experiment_id} must be in the 'active' state. Current state is {exp.lifecycle}."
        )


async def delete_tag(ctx, request: Request):
    req = await body_as(request, p.DeleteExperimentTag)
    experiment_id = v.experiment_id(req.experiment_id)
    key = v.check_key(req.key)
    writes = ctx.writes

    def build(envelope):
        _active(writes.experiment(experiment_id), experiment_id)
        if not writes.projection_has("experiment_tags", experiment_id=experiment_id, key=key):
            raise not_found(f"No tag with name: {key} in experiment with id {experiment_id}")
        return [ExperimentTagDeleted(**envelope(0, experiment_id=experiment_id), key=key)]

    await blocking(writes.commit, origin_of(request), build)
    return json_response()


ROUTES = {
    ("POST", "experiments/create"): create,
    ("GET", "experiments/get"): get,
    ("GET", "experiments/get-by-name"): get_by_name,
    ("POST", "experiments/search"): search,
    ("GET", "experiments/search"): search,
    ("POST", "experiments/update"): update,
    ("POST", "experiments/delete"): delete,
    ("POST", "experiments/restore"): restore,
    ("POST", "experiments/set-experiment-tag"): set_tag,
    ("POST", "experiments/delete-experiment-tag"): delete_tag,
}
