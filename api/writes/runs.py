"""Runs: the events of creating, updating, deleting and restoring one (logging to a run:
``run_logging``)."""

from __future__ import annotations

from trackledger.api.errors import invalid, not_found
from trackledger.api.writes.envelope import Envelope
from trackledger.api.writes.experiments import active_experiment
from trackledger.api.writes.write_index import WriteIndex
from trackledger.ledger.events import Event, RunCreated, RunDeleted, RunRestored, RunUpdated, Tag

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"


def known_run(index: WriteIndex, run_id: str) -> str:
    """The run's experiment id; 404 if unknown."""
    run = index.runs.get(run_id)
    if run is None:
        raise not_found(f"Run with id={run_id} not found")
    return run.experiment_id


def active_run(index: WriteIndex, run_id: str) -> str:
    """The run's experiment id; 404 if unknown, 400 if deleted (MLflow's messages)."""
    run = index.runs.get(run_id)
    if run is None:
        raise not_found(f"Run with id={run_id} not found")
    if run.lifecycle != "active":
        raise invalid(f"The run {run_id} must be in the 'active' state. Current state is {run.lifecycle}.")
    return run.experiment_id


def create(
    index: WriteIndex,
    envelope: Envelope,
    experiment_id: str,
    run_id: str,
    name: str,
    user_id: str,
    start_time: int,
    tags: list[Tag],
) -> list[Event]:
    experiment = active_experiment(index, experiment_id)
    if run_id in index.runs:  # a retry the ledger no longer remembers (see WriteService.commit)
        return []
    claimed_user = next((t.value for t in tags if t.key == USER_TAG), None) or user_id or "unknown"
    return [
        RunCreated(
            **envelope(0, claimed_actor=claimed_user, experiment_id=experiment_id, run_id=run_id),
            name=name,
            user_id=user_id,
            start_time=start_time,
            artifact_uri=experiment.run_artifact_uri(run_id),
            tags=tags,
        )
    ]


def update(
    index: WriteIndex,
    envelope: Envelope,
    run_id: str,
    status: str | None,
    end_time: int | None,
    name: str | None,
) -> list[Event]:
    experiment_id = active_run(index, run_id)
    # One call, one event: the projection keeps the mlflow.runName tag in step with the name.
    keys = envelope(0, experiment_id=experiment_id, run_id=run_id)
    return [RunUpdated(**keys, status=status, end_time=end_time, name=name)]


def delete(index: WriteIndex, envelope: Envelope, run_id: str) -> list[Event]:
    return [RunDeleted(**envelope(0, experiment_id=known_run(index, run_id), run_id=run_id))]


def restore(index: WriteIndex, envelope: Envelope, run_id: str) -> list[Event]:
    return [RunRestored(**envelope(0, experiment_id=known_run(index, run_id), run_id=run_id))]
