"""Registered models: the events of creating, renaming, updating and deleting one, of its tags
and of its aliases.

Requests name a model by its current name; the index resolves that to the model's immutable key
(``registered_model_id``), which every event carries.
"""

from __future__ import annotations

from trackledger.api.errors import already_exists, not_found
from trackledger.api.writes.envelope import Envelope
from trackledger.api.writes.write_index import RegisteredModelEntry, WriteIndex
from trackledger.ledger.events import (
    Event,
    RegisteredModelAliasDeleted,
    RegisteredModelAliasSet,
    RegisteredModelCreated,
    RegisteredModelDeleted,
    RegisteredModelRenamed,
    RegisteredModelTagDeleted,
    RegisteredModelTagSet,
    RegisteredModelUpdated,
    Tag,
)


def known_model(index: WriteIndex, name: str) -> RegisteredModelEntry:
    model = index.registered_models.get(name)
    if model is None:
        raise not_found(f"Registered Model with name={name} not found")
    return model


def live_version(index: WriteIndex, name: str, version: int) -> RegisteredModelEntry:
    """The model of a version that exists (not deleted)."""
    model = index.registered_models.get(name)
    if model is None or version not in model.stages:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return model


def create(
    index: WriteIndex, envelope: Envelope, name: str, description: str, tags: list[Tag]
) -> list[Event]:
    if name in index.registered_models:
        raise already_exists(f"Registered Model (name={name}) already exists.")
    keys = envelope(0)
    return [
        RegisteredModelCreated(
            **keys, name=name, description=description, tags=tags, registered_model_id=keys["id"]
        )
    ]


def rename(index: WriteIndex, envelope: Envelope, name: str, new_name: str) -> list[Event]:
    model = known_model(index, name)
    if new_name != name and new_name in index.registered_models:
        raise already_exists(f"Registered Model (name={new_name}) already exists.")
    # The versions it names are the ones whose last update the rename moves (a rebuild moves the same).
    return [
        RegisteredModelRenamed(
            **envelope(0),
            name=name,
            new_name=new_name,
            registered_model_id=model.key,
            versions=sorted(model.stages),
        )
    ]


def update(index: WriteIndex, envelope: Envelope, name: str, description: str | None) -> list[Event]:
    model = known_model(index, name)
    # As in MLflow, an update without a description clears it.
    return [
        RegisteredModelUpdated(
            **envelope(0), name=name, description=description or "", registered_model_id=model.key
        )
    ]


def delete(index: WriteIndex, envelope: Envelope, name: str) -> list[Event]:
    model = known_model(index, name)
    return [RegisteredModelDeleted(**envelope(0), name=name, registered_model_id=model.key)]


def set_tag(index: WriteIndex, envelope: Envelope, name: str, key: str, value: str) -> list[Event]:
    model = known_model(index, name)
    return [
        RegisteredModelTagSet(**envelope(0), name=name, key=key, value=value, registered_model_id=model.key)
    ]


def delete_tag(index: WriteIndex, envelope: Envelope, name: str, key: str) -> list[Event]:
    model = known_model(index, name)
    return [RegisteredModelTagDeleted(**envelope(0), name=name, key=key, registered_model_id=model.key)]


def set_alias(index: WriteIndex, envelope: Envelope, name: str, alias: str, version: int) -> list[Event]:
    model = live_version(index, name, version)
    return [
        RegisteredModelAliasSet(
            **envelope(0), name=name, key=alias, version=version, registered_model_id=model.key
        )
    ]


def delete_alias(index: WriteIndex, envelope: Envelope, name: str, alias: str) -> list[Event]:
    model = known_model(index, name)
    return [RegisteredModelAliasDeleted(**envelope(0), name=name, key=alias, registered_model_id=model.key)]
