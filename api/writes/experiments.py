"""Experiments: the events of creating, renaming, deleting and restoring one, and of its tags."""

from __future__ import annotations

from trackledger.api import validation
from trackledger.api.errors import MlflowError, already_exists, invalid, not_found
from trackledger.api.writes.envelope import Envelope, now_ms
from trackledger.api.writes.write_index import ExperimentEntry, WriteIndex
from trackledger.ledger.events import (
    Event,
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    ExperimentTagDeleted,
    ExperimentTagSet,
    Tag,
)


def known_experiment(index: WriteIndex, experiment_id: str) -> ExperimentEntry:
    experiment = index.experiments.get(experiment_id)
    if experiment is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return experiment


def active_experiment(index: WriteIndex, experiment_id: str) -> ExperimentEntry:
    experiment = known_experiment(index, experiment_id)
    if experiment.lifecycle != "active":
        raise invalid(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle}."
        )
    return experiment


def create_default(index: WriteIndex, envelope: Envelope) -> list[Event]:
    """Experiment "0", which every store has (MLflow's default experiment)."""
    return [
        ExperimentCreated(
            **envelope(0, experiment_id="0"),
            name="Default",
            artifact_location="mlflow-artifacts:/0",
            creation_time=now_ms(),
        )
    ]


def create(
    index: WriteIndex, envelope: Envelope, name: str, tags: list[Tag], artifact_location: str | None
) -> list[Event]:
    if name in index.experiment_by_name:
        raise already_exists(f"Experiment(name={name}) already exists.")
    experiment_id = index.next_experiment_id()
    return [
        ExperimentCreated(
            **envelope(0, experiment_id=experiment_id),
            name=name,
            artifact_location=artifact_location or f"mlflow-artifacts:/{experiment_id}",
            creation_time=now_ms(),
            tags=tags,
        )
    ]


def rename(index: WriteIndex, envelope: Envelope, experiment_id: str, new_name: str) -> list[Event]:
    experiment = known_experiment(index, experiment_id)
    name = validation.experiment_name(new_name)  # checked after the experiment, as MLflow does
    if experiment.lifecycle != "active":
        raise MlflowError("Cannot rename a non-active experiment.", "INVALID_STATE")
    if index.experiment_by_name.get(name, experiment_id) != experiment_id:
        raise MlflowError(f"Experiment(name={name}) already exists.", "BAD_REQUEST")
    if name == experiment.name:
        return []
    return [ExperimentRenamed(**envelope(0, experiment_id=experiment_id), name=name)]


def delete(index: WriteIndex, envelope: Envelope, experiment_id: str) -> list[Event]:
    """As in MLflow, deleting an experiment deletes its runs (the projection cascades it)."""
    _in_lifecycle(index, experiment_id, "active")
    return [ExperimentDeleted(**envelope(0, experiment_id=experiment_id))]


def restore(index: WriteIndex, envelope: Envelope, experiment_id: str) -> list[Event]:
    _in_lifecycle(index, experiment_id, "deleted")
    return [ExperimentRestored(**envelope(0, experiment_id=experiment_id))]


def _in_lifecycle(index: WriteIndex, experiment_id: str, lifecycle: str) -> None:
    # MLflow looks the experiment up among the ones in that lifecycle only.
    if known_experiment(index, experiment_id).lifecycle != lifecycle:
        raise not_found(f"No Experiment with id={experiment_id} exists")


def set_tag(index: WriteIndex, envelope: Envelope, experiment_id: str, tag: Tag) -> list[Event]:
    active_experiment(index, experiment_id)
    return [ExperimentTagSet(**envelope(0, experiment_id=experiment_id), key=tag.key, value=tag.value)]


def delete_tag(index: WriteIndex, envelope: Envelope, experiment_id: str, key: str) -> list[Event]:
    active_experiment(index, experiment_id)
    if not index.has_row("experiment_tags", experiment_id=experiment_id, key=key):
        raise not_found(f"No tag with name: {key} in experiment with id {experiment_id}")
    return [ExperimentTagDeleted(**envelope(0, experiment_id=experiment_id), key=key)]
