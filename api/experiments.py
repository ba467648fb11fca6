"""MLflow experiment endpoints: create, get, get-by-name, search, update, delete, restore, tags."""

from __future__ import annotations

from starlette.requests import Request
from trackledger.api import protocol, validation, writes
from trackledger.api.auth.guard import scope_of
from trackledger.api.errors import invalid, missing, not_found
from trackledger.api.http import body_as, json_response, origin_of, query
from trackledger.api.threads import read_after_writes
from trackledger.ledger.events import Tag
from trackledger.projections import experiments as experiment_reads
from trackledger.projections import runs as run_reads
from trackledger.projections.view_types import VIEW_TYPES


def _tag(key, value) -> Tag:
    validation.check_key(key)
    value = value or ""
    if len(value) > validation.MAX_EXPERIMENT_TAG_VAL_LENGTH:
        raise invalid(
            f"'value' exceeds the maximum length of {validation.MAX_EXPERIMENT_TAG_VAL_LENGTH} characters"
        )
    return Tag(key, value)


async def create(ctx, request: Request):
    req = await body_as(request, protocol.CreateExperiment)
    if req.name is None:
        raise missing("name")
    name = validation.experiment_name(req.name)
    tags = [_tag(t.key, t.value) for t in req.tags]
    location = validation.artifact_location(req.artifact_location) if req.artifact_location else None
    events = await ctx.writes.commit_off_loop(
        origin_of(request), writes.experiments.create, name, tags, location
    )
    return json_response({"experiment_id": events[0].experiment_id})


async def get(ctx, request: Request):
    experiment_id = validation.experiment_id(query(request, "experiment_id"))
    exp = await read_after_writes(ctx, ctx.projection.query, experiment_reads.experiment, experiment_id)
    if exp is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return json_response({"experiment": exp})


async def get_by_name(ctx, request: Request):
    name = query(request, "experiment_name")
    if name is None:
        raise missing("experiment_name")
    exp = await read_after_writes(ctx, ctx.projection.query, experiment_reads.experiment_by_name, name)
    if exp is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": exp})


async def search(ctx, request: Request):
    if request.method == "GET":
        params = dict(request.query_params)
        if "order_by" in params:
            params["order_by"] = request.query_params.getlist("order_by")
        req = protocol.convert(protocol.SearchExperiments, params)
    else:
        req = await body_as(request, protocol.SearchExperiments)
    if req.view_type not in VIEW_TYPES:
        raise invalid(f"Invalid view_type '{req.view_type}'. Valid view types are {list(VIEW_TYPES)}")
    validation.max_results(req.max_results, at_most=50_000)
    experiments, token = await read_after_writes(
        ctx,
        ctx.projection.query,
        experiment_reads.search_experiments,
        view_type=req.view_type,
        filter=req.filter or None,
        order_by=tuple(req.order_by),
        max_results=req.max_results,
        page_token=req.page_token,
        scope=scope_of(ctx, request),
    )
    out: dict = {}
    if experiments:
        out["experiments"] = experiments
    if token:
        out["next_page_token"] = token
    return json_response(out)


async def delete(ctx, request: Request):
    req = await body_as(request, protocol.ExperimentRef)
    experiment_id = validation.experiment_id(req.experiment_id)
    await ctx.writes.commit_off_loop(origin_of(request), writes.experiments.delete, experiment_id)
    return json_response()


async def restore(ctx, request: Request):
    req = await body_as(request, protocol.ExperimentRef)
    experiment_id = validation.experiment_id(req.experiment_id)
    await ctx.writes.commit_off_loop(origin_of(request), writes.experiments.restore, experiment_id)
    return json_response()


async def update(ctx, request: Request):
    req = await body_as(request, protocol.UpdateExperiment)
    experiment_id = validation.experiment_id(req.experiment_id)
    if not req.new_name:
        raise missing("new_name")
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.experiments.rename, experiment_id, req.new_name
    )
    return json_response()


async def set_tag(ctx, request: Request):
    req = await body_as(request, protocol.SetExperimentTag)
    experiment_id = validation.experiment_id(req.experiment_id)
    tag = _tag(req.key, req.value)
    await ctx.writes.commit_off_loop(origin_of(request), writes.experiments.set_tag, experiment_id, tag)
    return json_response()


async def delete_tag(ctx, request: Request):
    req = await body_as(request, protocol.DeleteExperimentTag)
    experiment_id = validation.experiment_id(req.experiment_id)
    key = validation.check_key(req.key)
    await ctx.writes.commit_off_loop(origin_of(request), writes.experiments.delete_tag, experiment_id, key)
    return json_response()


SEARCH_DATASETS_MAX_EXPERIMENTS = 20  # MLflow's cap


async def search_datasets(ctx, request: Request):
    """The UI's dataset summaries of some experiments: name, digest and context of each logged one."""
    req = await body_as(request, protocol.SearchDatasets)
    if not req.experiment_ids:
        raise invalid("SearchDatasets request must specify at least one experiment_id.")
    if len(req.experiment_ids) > SEARCH_DATASETS_MAX_EXPERIMENTS:
        raise invalid(
            f"SearchDatasets request cannot specify more than {SEARCH_DATASETS_MAX_EXPERIMENTS} "
            f"experiment_ids. Received {len(req.experiment_ids)} experiment_ids."
        )
    summaries = await read_after_writes(
        ctx, ctx.projection.query, run_reads.dataset_summaries, req.experiment_ids
    )
    return json_response({"dataset_summaries": summaries} if summaries else {})


ROUTES = {
    ("POST", "experiments/search-datasets"): search_datasets,
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
