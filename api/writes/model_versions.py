"""Model versions: the events of creating, updating, moving between stages and deleting one,
and of its tags. A transition that archives the other versions of its stage names them in its
events, so the projection needs no state to apply it."""

from __future__ import annotations

import json

from trackledger.api.writes import logged_models, model_version_sources
from trackledger.api.writes.envelope import Envelope
from trackledger.api.writes.registered_models import known_model, live_version
from trackledger.api.writes.write_index import WriteIndex
from trackledger.ledger.events import (
    Event,
    LoggedModelTagsSet,
    ModelVersionCreated,
    ModelVersionDeleted,
    ModelVersionStageChanged,
    ModelVersionTagDeleted,
    ModelVersionTagSet,
    ModelVersionUpdated,
    Tag,
)

MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it


def create(
    index: WriteIndex,
    envelope: Envelope,
    name: str,
    source: str,
    run_id: str | None,
    model_id: str | None,
    description: str,
    tags: list[Tag],
) -> list[Event]:
    """The model's next version number; a version of a logged model comes from its source run,
    and the model's ``mlflow.modelVersions`` tag lists it (as MLflow's server does)."""
    model = known_model(index, name)
    model_version_sources.check(index, source, run_id, model_id)
    if model_id:
        experiment_id = logged_models.known_model(index, model_id)
        run_id = run_id or index.source_run(model_id)
    version = model.latest_version + 1
    events: list[Event] = [
        ModelVersionCreated(
            **envelope(0, run_id=run_id, model_id=model_id),
            name=name,
            version=version,
            source=source,
            description=description,
            tags=tags,
            registered_model_id=model.key,
        )
    ]
    if model_id:
        listed = json.loads(index.logged_model_tags(model_id).get(MODEL_VERSIONS_TAG) or "[]")
        if (this := {"name": name, "version": version}) not in listed:
            listed.append(this)
        tag = Tag(key=MODEL_VERSIONS_TAG, value=json.dumps(listed))
        events.append(
            LoggedModelTagsSet(**envelope(1, experiment_id=experiment_id, model_id=model_id), tags=[tag])
        )
    return events


def update(
    index: WriteIndex, envelope: Envelope, name: str, version: int, description: str | None
) -> list[Event]:
    model = live_version(index, name, version)
    return [
        ModelVersionUpdated(
            **envelope(0), name=name, version=version, description=description, registered_model_id=model.key
        )
    ]


def transition_stage(
    index: WriteIndex, envelope: Envelope, name: str, version: int, stage: str, archive_others: bool
) -> list[Event]:
    """One event per version whose stage changes: this one, then (``archive_others``) the others
    in ``stage``, which become Archived."""
    model = live_version(index, name, version)
    others = (
        sorted(n for n, s in model.stages.items() if s == stage and n != version) if archive_others else []
    )
    changes = [(version, stage)] + [(n, "Archived") for n in others]
    return [
        ModelVersionStageChanged(**envelope(i), name=name, version=n, stage=s, registered_model_id=model.key)
        for i, (n, s) in enumerate(changes)
    ]


def delete(index: WriteIndex, envelope: Envelope, name: str, version: int) -> list[Event]:
    model = live_version(index, name, version)
    return [ModelVersionDeleted(**envelope(0), name=name, version=version, registered_model_id=model.key)]


def set_tag(
    index: WriteIndex, envelope: Envelope, name: str, version: int, key: str, value: str
) -> list[Event]:
    model = live_version(index, name, version)
    keys = {"name": name, "version": version, "key": key, "registered_model_id": model.key}
    return [ModelVersionTagSet(**envelope(0), **keys, value=value)]


def delete_tag(index: WriteIndex, envelope: Envelope, name: str, version: int, key: str) -> list[Event]:
    model = live_version(index, name, version)
    keys = {"name": name, "version": version, "key": key, "registered_model_id": model.key}
    return [ModelVersionTagDeleted(**envelope(0), **keys)]
