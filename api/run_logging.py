"""MLflow's run logging endpoints (the hot path): metrics, params, tags, batches, inputs, outputs.

log-metric, log-parameter, set-tag and log-batch are one ``writes.run_logging.log_batch`` write each,
committed on the event loop; the rest commit off the loop.
"""

from __future__ import annotations

from starlette.requests import Request
from trackledger.api import protocol, validation, writes
from trackledger.api.errors import invalid, missing
from trackledger.api.http import body_as, decode_once, json_response, origin_of
from trackledger.api.limits import body_at_most
from trackledger.api.writes.runs import RUN_NAME_TAG, active_run
from trackledger.ledger.events import Dataset, Metric, ModelOutput, Param, Tag


def _tags(items, path: str | None = "tags") -> list[Tag]:
    """Tags to set on a run (``path`` names them in errors; None: one tag, its ``key``). As in
    MLflow, an empty ``mlflow.runName`` changes nothing."""
    tags = (
        Tag(validation.check_key(t.key, f"{path}[{i}].key" if path else "key"), validation.tag_value(t.value))
        for i, t in enumerate(items)
    )
    return [t for t in tags if t.key != RUN_NAME_TAG or t.value]


def _metric(m, index: int | None = None) -> Metric:
    """A validated metric; the error path (with MLflow's ``metrics[i].field`` names) is the slow one."""
    key, value, ts = m.key, m.value, m.timestamp
    if value is None or ts is None or ts < 0 or value != value or value in _INFINITIES or key is None:
        path = "" if index is None else f"metrics[{index}]."
        key = validation.check_key(key, f"{path}key")
        value = validation.metric_value(value, f"{path}value")
        ts = validation.timestamp(ts, f"{path}timestamp")
    elif key not in validation.ACCEPTED_KEYS:
        validation.check_key(key, "key" if index is None else f"metrics[{index}].key")
    return Metric(key, value, ts, m.step or 0, m.model_id, m.dataset_name, m.dataset_digest)


_INFINITIES = (float("inf"), float("-inf"))


async def log_metric(ctx, request: Request):
    req = await body_as(request, protocol.LogMetric)
    run_id = validation.run_id(req.id)
    metric = _metric(req)
    await ctx.writes.commit_on_loop(
        origin_of(request), writes.run_logging.log_batch, run_id, metrics=[metric]
    )
    return json_response()


async def log_param(ctx, request: Request):
    req = await body_as(request, protocol.LogParam)
    run_id = validation.run_id(req.id)
    # no value: "", as in MLflow
    param = Param(validation.check_key(req.key), validation.param_value(req.value))
    await ctx.writes.commit_on_loop(
        origin_of(request), writes.run_logging.log_batch, run_id, params=[param], single_param=True
    )
    return json_response()


async def set_tag(ctx, request: Request):
    req = await body_as(request, protocol.SetTag)
    run_id = validation.run_id(req.id)
    tags = _tags([req], path=None)  # no value: "", as in MLflow
    if tags:
        await ctx.writes.commit_on_loop(origin_of(request), writes.run_logging.log_batch, run_id, tags=tags)
    else:
        active_run(ctx.writes.index, run_id)  # refused as a write would be, though nothing is written
    return json_response()


async def log_batch(ctx, request: Request):
    body = await body_at_most(request, validation.MAX_BATCH_LOG_REQUEST_SIZE, validation.batch_too_large)
    req = decode_once(request, protocol.LogBatch, body)
    run_id = validation.run_id(req.id)
    validation.batch_limits(len(req.metrics), len(req.params), len(req.tags))
    metrics = [_metric(m, i) for i, m in enumerate(req.metrics)]
    params = [
        Param(validation.check_key(x.key, f"params[{i}].key"), validation.param_value(x.value))
        for i, x in enumerate(req.params)
    ]
    tags = _tags(req.tags)
    await ctx.writes.commit_on_loop(
        origin_of(request), writes.run_logging.log_batch, run_id, metrics, params, tags
    )
    return json_response()


async def delete_tag(ctx, request: Request):
    req = await body_as(request, protocol.DeleteTag)
    run_id = validation.run_id(req.id)
    key = validation.check_key(req.key)
    await ctx.writes.commit_off_loop(origin_of(request), writes.run_logging.delete_tag, run_id, key)
    return json_response()


async def log_inputs(ctx, request: Request):
    req = await body_as(request, protocol.LogInputs)
    run_id = validation.run_id(req.id)
    datasets = [_dataset_input(item, i) for i, item in enumerate(req.datasets)]
    models = [ModelOutput(m.model_id, m.step) for m in req.models if m.model_id]
    await ctx.writes.commit_off_loop(
        origin_of(request), writes.run_logging.log_inputs, run_id, datasets, models
    )
    return json_response()


def _dataset_input(item: protocol.DatasetInputIn, index: int) -> Dataset:
    """A dataset input checked as MLflow checks it: present fields, its column sizes."""
    d = item.dataset
    if d is None:
        raise missing(f"datasets[{index}].dataset")
    for field in ("name", "digest"):
        if getattr(d, field) is None:
            raise invalid(f"Dataset {field} cannot be None")
    for field, limit in (
        ("name", validation.MAX_DATASET_NAME_SIZE),
        ("digest", validation.MAX_DATASET_DIGEST_SIZE),
        ("source", validation.MAX_DATASET_SOURCE_SIZE),
        ("schema", validation.MAX_DATASET_SCHEMA_SIZE),
        ("profile", validation.MAX_DATASET_PROFILE_SIZE),
    ):
        validation.exceeds(field, getattr(d, field), limit)
    tags = [Tag(t.key or "", t.value or "") for t in item.tags]  # missing: "", as in MLflow
    for tag in tags:
        validation.exceeds("key", tag.key, validation.MAX_INPUT_TAG_KEY_SIZE)
        validation.exceeds("value", tag.value, validation.MAX_INPUT_TAG_VALUE_SIZE)
    return Dataset(d.name, d.digest, d.source_type, d.source, d.schema, d.profile, tags)


async def log_outputs(ctx, request: Request):
    req = await body_as(request, protocol.LogOutputs)
    run_id = validation.run_id(req.id)
    models = [ModelOutput(m.model_id, m.step) for m in req.models if m.model_id]
    await ctx.writes.commit_off_loop(origin_of(request), writes.run_logging.log_outputs, run_id, models)
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
