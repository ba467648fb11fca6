"""Logged models (MLflow 3): the events of creating, finalizing, tagging and deleting one.
A model's events carry its experiment and, through ``Envelope``, its source run's user."""

from __future__ import annotations

from trackledger.api.errors import not_found
from trackledger.api.writes.envelope import Envelope, now_ms
from trackledger.api.writes.experiments import known_experiment
from trackledger.api.writes.write_index import WriteIndex
from trackledger.ledger.events import (
    Event,
    LoggedModelCreated,
    LoggedModelDeleted,
    LoggedModelParamsLogged,
    LoggedModelTagDeleted,
    LoggedModelTagsSet,
    LoggedModelUpdated,
    Param,
    Tag,
)


def known_model(index: WriteIndex, model_id: str) -> str:
    """The model's experiment id; 404 if unknown."""
    entry = index.logged_model(model_id)
    if entry is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return entry.experiment_id


def create(
    index: WriteIndex,
    envelope: Envelope,
    model_id: str,
    experiment_id: str,
    name: str | None,
    model_type: str | None,
    source_run_id: str | None,
    params: list[Param],
    tags: list[Tag],
) -> list[Event]:
    experiment = known_experiment(index, experiment_id)  # a source run is recorded as given, as MLflow does
    if model_id in index.logged_models:  # a retry the ledger no longer remembers
        return []
    keys = envelope(0, experiment_id=experiment_id, run_id=source_run_id, model_id=model_id)
    return [
        LoggedModelCreated(
            **keys,
            name=name or f"model-{model_id[2:10]}",
            artifact_location=experiment.model_artifact_uri(model_id),
            creation_time=now_ms(),
            source_run_id=source_run_id,
            model_type=model_type or "",
            params=params,
            tags=tags,
        )
    ]


def finalize(index: WriteIndex, envelope: Envelope, model_id: str, status: str) -> list[Event]:
    keys = envelope(0, experiment_id=known_model(index, model_id), model_id=model_id)
    return [LoggedModelUpdated(**keys, status=status)]


def set_tags(index: WriteIndex, envelope: Envelope, model_id: str, tags: list[Tag]) -> list[Event]:
    keys = envelope(0, experiment_id=known_model(index, model_id), model_id=model_id)
    return [LoggedModelTagsSet(**keys, tags=tags)]


def log_params(index: WriteIndex, envelope: Envelope, model_id: str, params: list[Param]) -> list[Event]:
    keys = envelope(0, experiment_id=known_model(index, model_id), model_id=model_id)
    return [LoggedModelParamsLogged(**keys, params=params)]


def delete_tag(index: WriteIndex, envelope: Envelope, model_id: str, key: str) -> list[Event]:
    keys = envelope(0, experiment_id=known_model(index, model_id), model_id=model_id)
    if not index.has_row("logged_model_tags", model_id=model_id, key=key):
        raise not_found(f"No tag with key {key!r} found for model with ID {model_id!r}.")
    return [LoggedModelTagDeleted(**keys, key=key)]


def delete(index: WriteIndex, envelope: Envelope, model_id: str) -> list[Event]:
    return [LoggedModelDeleted(**envelope(0, experiment_id=known_model(index, model_id), model_id=model_id))]
