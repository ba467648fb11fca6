"""MLflow run endpoints: lifecycle, search and metric history (logging: ``run_logging``)."""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request
from trackledger.api import protocol, validation, writes
from trackledger.api.auth.guard import readable
from trackledger.api.errors import invalid, missing, not_found
from trackledger.api.http import (
    body_as,
    int_query,
    json_response,
    metric_values_for_json,
    metrics_for_json,
    origin_of,
    query,
)
from trackledger.api.run_names import generated_run_name
from trackledger.api.threads import read_after_writes
from trackledger.api.writes.envelope import now_ms
from trackledger.api.writes.runs import RUN_NAME_TAG
from trackledger.ledger.events import Tag
from trackledger.projections import history
from trackledger.projections import runs as run_reads
from trackledger.projections.view_types import VIEW_TYPES

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


# Lifecycle ---------------------------------------------------------------------------


async def create(ctx, request: Request):
    req = await body_as(request, protocol.CreateRun)
    experiment_id = validation.experiment_id(req.experiment_id or "0")
    key = validation.created_run_tag_key
    tags = [Tag(key(t.key, f"tags[{i}].key"), validation.tag_value(t.value)) for i, t in enumerate(req.tags)]
    tags = [t for t in tags if t.key != RUN_NAME_TAG or t.value]  # an empty one names nothing
    tag_name = next((t.value for t in tags if t.key == RUN_NAME_TAG), None)
    if req.run_name and tag_name and req.run_name != tag_name:
        raise invalid(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different "
            f"values (run_name='{req.run_name}', mlflow.runName='{tag_name}')."
        )
    name = req.run_name or tag_name or generated_run_name()
    if tag_name is None:
        tags.append(Tag(RUN_NAME_TAG, name))
    origin = origin_of(request)
    run_id = origin.derived_id("run") or uuid.uuid4().hex
    start_time = req.start_time if req.start_time is not None else now_ms()
    # Decided from the in-memory index only: on the event loop, no thread hop.
    events = await ctx.writes.commit_on_loop(
        origin, writes.runs.create, experiment_id, run_id, name, req.user_id or "", start_time, tags
    )
    if not events:
        run = await read_after_writes(ctx, ctx.projection.query, run_reads.run, run_id)
        return json_response({"run": metrics_for_json(run)})
    # Built from the event (this request's, or a retried request's first), so creating a run never
    # waits for DuckDB.
    created = events[0]
    info = {
        "run_uuid": created.run_id,
        "experiment_id": created.experiment_id,
        "run_name": created.name,
        "user_id": created.user_id,
        "status": created.status,
        "start_time": created.start_time,
        "artifact_uri": created.artifact_uri,
        "lifecycle_stage": "active",
        "run_id": created.run_id,
    }
    data = {"tags": [{"key": t.key, "value": t.value} for t in created.tags]}
    return json_response({"run": {"info": info, "data": data, "inputs": {}}})


async def get(ctx, request: Request):
    run_id = query(request, "run_id") or query(request, "run_uuid")
    if not run_id:
        raise missing("run_id")
    run = await read_after_writes(ctx, ctx.projection.query, run_reads.run, run_id)
    if run is None:
        raise not_found(f"Run with id={run_id} not found")
    return json_response({"run": metrics_for_json(run)})


async def update(ctx, request: Request):
    req = await body_as(request, protocol.UpdateRun)
    run_id = validation.run_id(req.id)
    if req.status is not None and req.status not in RUN_STATUSES:
        raise invalid(f"Invalid value \"{req.status}\" for parameter 'status' supplied.")
    origin = origin_of(request)
    await ctx.writes.commit_off_loop(
        origin, writes.runs.update, run_id, req.status, req.end_time, req.run_name
    )
    run = await read_after_writes(ctx, ctx.projection.query, run_reads.run, run_id)
    return json_response({"run_info": run["info"]})


async def delete(ctx, request: Request):
    req = await body_as(request, protocol.RunRef)
    await ctx.writes.commit_off_loop(origin_of(request), writes.runs.delete, validation.run_id(req.id))
    return json_response()


async def restore(ctx, request: Request):
    req = await body_as(request, protocol.RunRef)
    await ctx.writes.commit_off_loop(origin_of(request), writes.runs.restore, validation.run_id(req.id))
    return json_response()


# Reads --------------------------------------------------------------------------------


async def search(ctx, request: Request):
    req = await body_as(request, protocol.SearchRuns)
    if req.run_view_type not in VIEW_TYPES:
        raise invalid(f"Invalid run_view_type '{req.run_view_type}'")
    validation.max_results(req.max_results, at_most=50_000)
    experiment_ids = readable(ctx, request, [validation.experiment_id(e) for e in req.experiment_ids])
    if not experiment_ids and req.experiment_ids:
        return json_response({})
    runs, token = await read_after_writes(
        ctx,
        ctx.projection.query,
        run_reads.search_runs_json,
        experiment_ids,
        filter=req.filter or "",
        run_view_type=req.run_view_type,
        max_results=req.max_results,
        order_by=tuple(req.order_by),
        page_token=req.page_token,
    )
    out: dict = {}
    if runs != b"[]":
        out["runs"] = msgspec.Raw(runs)  # JSON text from the projection goes out as it is
    if token:
        out["next_page_token"] = token
    return json_response(out)


BULK_MAX_RUNS = 100  # MLflow's caps of the UI's bulk history reads
BULK_MAX_RESULTS = 25_000
BULK_INTERVAL_MAX_RESULTS = 2_500


async def metric_history(ctx, request: Request):
    run_id = query(request, "run_id") or query(request, "run_uuid")
    key = query(request, "metric_key")
    if not run_id:
        raise missing("run_id")
    if key is None:
        raise missing("metric_key")
    # Not a number: all of it, as MLflow answers; zero or less: refused, as MLflow refuses it.
    max_results = validation.integer(query(request, "max_results"))
    if max_results is not None:
        validation.max_results(max_results)

    # An unknown run has no history (MLflow answers {} too).
    metrics, token = await read_after_writes(
        ctx,
        ctx.projection.query,
        history.metric_history_json,
        run_id,
        key,
        max_results=max_results,
        page_token=query(request, "page_token"),
    )
    out: dict = {}
    if metrics != b"[]":
        out["metrics"] = msgspec.Raw(metrics)
    if token:
        out["next_page_token"] = token
    return json_response(out)


async def metric_history_bulk(ctx, request: Request):
    """The UI's histories of one metric over several runs: by run id, each in MLflow's order."""
    run_ids = request.query_params.getlist("run_id")
    if not run_ids:
        raise invalid("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > BULK_MAX_RUNS:
        raise invalid(
            f"GetMetricHistoryBulk request cannot specify more than {BULK_MAX_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = query(request, "metric_key")
    if key is None:
        raise invalid("GetMetricHistoryBulk request must specify a metric_key.")
    limit = int_query(request, "max_results")
    limit = BULK_MAX_RESULTS if limit is None else min(validation.max_results(limit), BULK_MAX_RESULTS)

    def read() -> list[dict]:
        table = ctx.projection.query(history.metric_history_arrow, sorted(set(run_ids)), [key])
        by_run: dict[str, list[dict]] = {}
        for m in table.to_pylist():
            by_run.setdefault(m["run_id"], []).append(m)
        out = []
        for run_id in sorted(by_run):
            points = sorted(by_run[run_id], key=lambda m: (m["timestamp"], m["step"], m["value"]))[:limit]
            out += [
                {"key": key, **{f: m[f] for f in ("value", "timestamp", "step")}, "run_id": run_id}
                for m in points
            ]
        return out

    metrics = await read_after_writes(ctx, read)
    metric_values_for_json(metrics)
    return json_response({"metrics": metrics} if metrics else {})


async def metric_history_bulk_interval(ctx, request: Request):
    """The UI's sampled histories: up to ``max_results`` points per run, evenly over the steps."""
    run_ids = request.query_params.getlist("run_ids")
    key = query(request, "metric_key")  # "" is missing too, as in MLflow
    if not run_ids:
        raise missing("run_ids")
    if key is None:
        raise missing("metric_key")
    if len(run_ids) > 100:
        raise invalid("GetMetricHistoryBulkInterval request must specify at most 100 run_ids.")
    start, end = int_query(request, "start_step"), int_query(request, "end_step")
    if (start is None) != (end is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise invalid(
            f"end_step must be greater than start_step. Found start_step={start} and end_step={end}."
        )
    limit = int_query(request, "max_results")
    if limit is not None and not 1 <= limit <= BULK_INTERVAL_MAX_RESULTS:
        raise invalid(f"max_results must be between 1 and {BULK_INTERVAL_MAX_RESULTS}.")
    limit = 320 if limit is None else limit

    def read() -> list[dict]:
        by_run: dict[str, list[dict]] = {run_id: [] for run_id in run_ids}
        # In step order (for charts), exact duplicates once.
        for m in ctx.projection.query(history.metric_history_arrow, list(by_run), [key]).to_pylist():
            if (start is None or m["step"] >= start) and (end is None or m["step"] <= end):
                by_run[m["run_id"]].append(m)
        out = []
        for run_id, points in by_run.items():
            if len(points) > limit:  # keep the first and last, evenly spaced in between
                stride = (len(points) - 1) / (limit - 1) if limit > 1 else len(points)
                points = [points[round(i * stride)] for i in range(limit)]
            out += [
                {"key": key, **{f: m[f] for f in ("value", "timestamp", "step")}, "run_id": run_id}
                for m in points
            ]
        return out

    metrics = await read_after_writes(ctx, read)
    metric_values_for_json(metrics)
    return json_response({"metrics": metrics} if metrics else {})


ROUTES = {
    ("POST", "runs/create"): create,
    ("GET", "runs/get"): get,
    ("POST", "runs/update"): update,
    ("POST", "runs/delete"): delete,
    ("POST", "runs/restore"): restore,
    ("POST", "runs/search"): search,
    ("GET", "metrics/get-history"): metric_history,
    ("GET", "metrics/get-history-bulk"): metric_history_bulk,
    ("GET", "metrics/get-history-bulk-interval"): metric_history_bulk_interval,
}
