"""MLflow's run logging endpoints (the hot path): metrics, params, tags, batches, inputs, outputs.

log-metric, log-parameter, set-tag and log-batch are one ``WriteService.log_batch`` each, staged on
the event loop when the run's state is in memory; the rest commit off the loop.
"""

from __future__ import annotations

from starlette.requests import Request
from trackledger.api import protocol as p
from trackledger.api import validation as v
from trackledger.api.errors import invalid, missing, not_found
from trackledger.api.http import body_as, json_response, origin_of
from trackledger.api.threads import blocking
from trackledger.api.tracking import RUN_NAME_TAG
from trackledger.ledger.events import (
    Dataset,
    InputsLogged,
    Metric,
    ModelOutput,
    OutputsLogged,
    Param,
    RunTagDeleted,
    Tag,
)


def _tags(items, path="tags") -> list[Tag]:
    """Tags to set on a run. As in MLflow, an empty ``mlflow.runName`` changes nothing."""
    tags = (Tag(v.check_key(t.key, f"{path}[{i}].key"), v.tag_value(t.value)) for i, t in enumerate(items))
    return [t for t in tags if t.key != RUN_NAME_TAG or t.value]


def _metric(m, index: int | None = None) -> Metric:
    """A validated metric; the error path (with MLflow's ``metrics[i].field`` names) is the slow one."""
    key, value, ts = m.key, m.value, m.timestamp
    if value is None or ts is None or ts < 0 or value != value or value in _INFINITIES or key is None:
        path = "" if index is None else f"metrics[{index}]."
        key = v.check_key(key, f"{path}key")
        value = v.metric_value(value, f"{path}value")
        ts = v.timestamp(ts, f"{path}timestamp")
    elif key not in v.ACCEPTED_KEYS:
        v.check_key(key, "key" if index is None else f"metrics[{index}].key")
    return Metric(key, value, ts, m.step or 0, m.model_id, m.dataset_name, m.dataset_digest)


_INFINITIES = (float("inf"), float("-inf"))


async def log_metric(ctx, request: Request):
    req = await body_as(request, p.LogMetric)
    run_id = v.run_id(req.id)
    metric = _metric(req)
    await ctx.writes.log_batch(origin_of(request), run_id, metrics=[metric])
    return json_response()


async def log_param(ctx, request: Request):
    req = await body_as(request, p.LogParam)
    run_id = v.run_id(req.id)
    param = Param(v.check_key(req.key), v.param_value(req.value))  # no value: "", as in MLflow
    await ctx.writes.log_batch(origin_of(request), run_id, params=[param], single_param=True)
    return json_response()


async def set_tag(ctx, request: Request):
    req = await body_as(request, p.SetTag)
    run_id = v.run_id(req.id)
    tags = _tags([req])  # no value: "", as in MLflow
    if tags:
        await ctx.writes.log_batch(origin_of(request), run_id, tags=tags)
    else:
        ctx.writes.active_run(run_id)  # refused as a write would be, though nothing is written
    return json_response()


async def log_batch(ctx, request: Request):
    body = await request.body()
    v.batch_size(body)
    req = p.decode(p.LogBatch, body)
    run_id = v.run_id(req.id)
    v.batch_limits(len(req.metrics), len(req.params), len(req.tags))
    metrics = [_metric(m, i) for i, m in enumerate(req.metrics)]
    params = [
        Param(v.check_key(x.key, f"params[{i}].key"), v.param_value(x.value))
        for i, x in enumerate(req.params)
    ]
    tags = _tags(req.tags)
    await ctx.writes.log_batch(origin_of(request), run_id, metrics, params, tags)
    return json_response()


async def delete_tag(ctx, request: Request):
    req = await body_as(request, p.DeleteTag)
    run_id = v.run_id(req.id)
    key = v.check_key(req.key)
    writes = ctx.writes

    def build(envelope):
        experiment_id = writes.active_run(run_id)
        if not writes.projection_has("run_tags", run_id=run_id, key=key):
            raise not_found(f"No tag with name: {key} in run with id {run_id}")
        return [RunTagDeleted(**envelope(0, experiment_id=experiment_id, run_id=run_id), key=key)]

    await blocking(writes.commit, origin_of(request), build)
    return json_response()


async def log_inputs(ctx, request: Request):
    req = await body_as(request, p.LogInputs)
    run_id = v.run_id(req.id)
    datasets = [_dataset_input(item, i) for i, item in enumerate(req.datasets)]
    models = [ModelOutput(m.model_id, m.step) for m in req.models if m.model_id]
    writes = ctx.writes

    def build(envelope):
        experiment_id = writes.active_run(run_id)
        if not datasets and not models:
            return []
        keys = envelope(0, experiment_id=experiment_id, run_id=run_id)
        return [InputsLogged(**keys, datasets=datasets, models=models)]

    await blocking(writes.commit, origin_of(request), build)
    return json_response()


def _dataset_input(item: p.DatasetInputIn, index: int) -> Dataset:
    """A dataset input checked as MLflow checks it: present fields, its column sizes."""
    d = item.dataset
    if d is None:
        raise missing(f"datasets[{index}].dataset")
    for field in ("name", "digest"):
        if getattr(d, field) is None:
            raise invalid(f"Dataset {field} cannot be None")
    for field, limit in (
        ("name", v.MAX_DATASET_NAME_SIZE),
        ("digest", v.MAX_DATASET_DIGEST_SIZE),
        ("source", v.MAX_DATASET_SOURCE_SIZE),
        ("schema", v.MAX_DATASET_SCHEMA_SIZE),
        ("profile", v.MAX_DATASET_PROFILE_SIZE),
    ):
        v.exceeds(field, getattr(d, field), limit)
    tags = [Tag(t.key or "", t.value or "") for t in item.tags]  # missing: "", as in MLflow
    for tag in tags:
        v.exceeds("key", tag.key, v.MAX_INPUT_TAG_KEY_SIZE)
        v.exceeds("value", tag.value, v.MAX_INPUT_TAG_VALUE_SIZE)
    return Dataset(d.name, d.digest, d.source_type, d.source, d.schema, d.profile, tags)


async def log_outputs(ctx, request: Request):
    req = await body_as(request, p.LogOutputs)
    run_id = v.run_id(req.id)
    models = [ModelOutput(m.model_id, m.step) for m in req.models if m.model_id]
    writes = ctx.writes

    def build(envelope):
        experiment_id = writes.active_run(run_id)
        if not models:
            return []
        return [OutputsLogged(**envelope(0, experiment_id=experiment_id, run_id=run_id), models=models)]

    await blocking(writes.commit, origin_of(request), build)
    return json_response()


ROUTES = {
    ("POST", "runs/log-metric"): log_metric,
    ("POST", "runs/log-parameter"): log_param,
    ("POST", "runs/set-tag"): set_tag,
    ("POST", "runs/delete-tag"): delete_tag,
    ("POST", "runs/log-batch"): log_batch,
    ("POST", "runs/log-inputs"): log_inputs,
    ("POST", "runs/outputs"): log_outputs,
}
