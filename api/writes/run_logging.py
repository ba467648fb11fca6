"""Logging to a run: the events of metrics, params and tags (one ``BatchLogged`` per call, the
hot path), of deleting a tag, and of a run's inputs and outputs. Only active runs take them."""

from __future__ import annotations

from collections.abc import Sequence

from trackledger.api.errors import invalid, not_found
from trackledger.api.writes.envelope import Envelope
from trackledger.api.writes.runs import active_run
from trackledger.api.writes.write_index import WriteIndex
from trackledger.ledger.events import (
    BatchLogged,
    Dataset,
    Event,
    InputsLogged,
    Metric,
    ModelOutput,
    OutputsLogged,
    Param,
    RunTagDeleted,
    Tag,
)


def log_batch(
    index: WriteIndex,
    envelope: Envelope,
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[Tag] = (),
    single_param: bool = False,
) -> list[Event]:
    """log-metric, log-parameter, set-tag and log-batch. ``single_param``: log-parameter, whose
    refusal of a changed value is worded for one param."""
    experiment_id = active_run(index, run_id)
    new_params = _new_params(index, run_id, params, single_param) if params else params
    if not (metrics or new_params or tags):
        return []
    # One call, one event: the projection keeps the run name in step with mlflow.runName.
    return [
        BatchLogged(
            **envelope(0, experiment_id=experiment_id, run_id=run_id),
            metrics=list(metrics),
            params=list(new_params),
            tags=list(tags),
        )
    ]


def _new_params(index: WriteIndex, run_id: str, params: Sequence[Param], single: bool) -> list[Param]:
    """Params are immutable: the same value again is a no-op, another value is refused."""
    seen: dict[str, str] = {}
    for p in params:
        if p.key in seen:
            raise invalid(
                f"Duplicate parameter keys have been submitted: {[p.key]}. Please ensure "
                "the request contains only one param value per param key."
            )
        seen[p.key] = p.value
    logged = index.run_params(run_id)
    changed = [
        (p.key, logged[p.key], p.value) for p in params if p.key in logged and logged[p.key] != p.value
    ]
    if changed and single:
        key, old, new = changed[0]
        raise invalid(
            f"Changing param values is not allowed. Param with key='{key}' was already logged "
            f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
        )
    if changed:
        shown = [{"key": k, "old_value": o, "new_value": n} for k, o, n in changed]
        raise invalid(
            f"Changing param values is not allowed. Params were already logged='{shown}' "
            f"for run ID='{run_id}'."
        )
    return [p for p in params if p.key not in logged]


def delete_tag(index: WriteIndex, envelope: Envelope, run_id: str, key: str) -> list[Event]:
    experiment_id = active_run(index, run_id)
    if not index.has_row("run_tags", run_id=run_id, key=key):
        raise not_found(f"No tag with name: {key} in run with id {run_id}")
    return [RunTagDeleted(**envelope(0, experiment_id=experiment_id, run_id=run_id), key=key)]


def log_inputs(
    index: WriteIndex, envelope: Envelope, run_id: str, datasets: list[Dataset], models: list[ModelOutput]
) -> list[Event]:
    experiment_id = active_run(index, run_id)
    if not datasets and not models:
        return []
    keys = envelope(0, experiment_id=experiment_id, run_id=run_id)
    return [InputsLogged(**keys, datasets=datasets, models=models)]


def log_outputs(index: WriteIndex, envelope: Envelope, run_id: str, models: list[ModelOutput]) -> list[Event]:
    experiment_id = active_run(index, run_id)
    if not models:
        return []
    return [OutputsLogged(**envelope(0, experiment_id=experiment_id, run_id=run_id), models=models)]
