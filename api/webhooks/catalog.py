"""The kinds of event a webhook can hear, and what each ledger event tells them.

A kind is ``entity.action`` (``model_version.created``); on MLflow's wire it is an object
``{"entity": "MODEL_VERSION", "action": "CREATED"}``. MLflow's registry kinds keep MLflow's data
shapes (``mlflow/webhooks/types.py``); trackledger's own kinds (runs, run tags, logged models,
stage transitions) are documented in README.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from trackledger.api.errors import invalid
from trackledger.ledger.events import (
    BatchLogged,
    Event,
    LoggedModelCreated,
    LoggedModelUpdated,
    ModelVersionCreated,
    ModelVersionStageChanged,
    ModelVersionTagDeleted,
    ModelVersionTagSet,
    RegisteredModelAliasDeleted,
    RegisteredModelAliasSet,
    RegisteredModelCreated,
    RunCreated,
    RunTagDeleted,
    RunUpdated,
)

MLFLOW_KINDS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)
OWN_KINDS = (
    "run.created",
    "run.finished",
    "run.failed",
    "run.killed",
    "run_tag.set",
    "run_tag.deleted",
    "logged_model.created",
    "logged_model.ready",
    "model_version_stage.transitioned",
)
KINDS = MLFLOW_KINDS + OWN_KINDS
# MLflow's kinds for things trackledger does not have.
UNSUPPORTED_KINDS = {
    "prompt.created",
    "prompt_version.created",
    "prompt_tag.set",
    "prompt_tag.deleted",
    "prompt_version_tag.set",
    "prompt_version_tag.deleted",
    "prompt_alias.created",
    "prompt_alias.deleted",
    "budget_policy.exceeded",
}
TAG_KINDS = {"run_tag.set", "run_tag.deleted", "model_version_tag.set", "model_version_tag.deleted"}
_RUN_END = {"FINISHED": "run.finished", "FAILED": "run.failed", "KILLED": "run.killed"}


def parse_kind(value: Any) -> str:
    """A kind from the wire: ``{"entity", "action"}`` (any case) or ``"entity.action"``."""
    if isinstance(value, dict):
        entity, action = value.get("entity"), value.get("action")
        if not isinstance(entity, str) or not isinstance(action, str):
            raise invalid(f"A webhook event needs an 'entity' and an 'action', got {value!r}")
        kind = f"{entity.lower()}.{action.lower()}"
    elif isinstance(value, str):
        kind = value.lower()
    else:
        raise invalid(f"Invalid webhook event {value!r}: expected {{'entity', 'action'}} or 'entity.action'")
    if kind in UNSUPPORTED_KINDS:
        raise invalid(
            f"Webhook event '{kind}' is not supported: this server has no prompts or budget policies. "
            f"Supported events: {', '.join(KINDS)}"
        )
    if kind not in KINDS:
        raise invalid(f"Unknown webhook event '{kind}'. Supported events: {', '.join(KINDS)}")
    return kind


def wire_kind(kind: str) -> dict[str, str]:
    entity, action = kind.split(".")
    return {"entity": entity.upper(), "action": action.upper()}


def _tags(tags) -> dict[str, str]:
    return {t.key: t.value for t in tags}


def notifications(event: Event) -> Iterator[tuple[str, dict]]:
    """The (kind, data) pairs an event makes, in order; most events make none."""
    match event:
        case RegisteredModelCreated():
            data = {"name": event.name, "tags": _tags(event.tags), "description": event.description or None}
            yield "registered_model.created", data
        case ModelVersionCreated():
            yield (
                "model_version.created",
                {
                    "name": event.name,
                    "version": str(event.version),
                    "source": event.source,
                    "run_id": event.run_id,
                    "tags": _tags(event.tags),
                    "description": event.description or None,
                },
            )
        case ModelVersionTagSet():
            data = {"name": event.name, "version": str(event.version), "key": event.key, "value": event.value}
            yield "model_version_tag.set", data
        case ModelVersionTagDeleted():
            yield (
                "model_version_tag.deleted",
                {"name": event.name, "version": str(event.version), "key": event.key},
            )
        case RegisteredModelAliasSet():
            data = {"name": event.name, "alias": event.key, "version": str(event.version)}
            yield "model_version_alias.created", data
        case RegisteredModelAliasDeleted():
            yield "model_version_alias.deleted", {"name": event.name, "alias": event.key}
        case ModelVersionStageChanged():
            data = {"name": event.name, "version": str(event.version), "stage": event.stage}
            yield "model_version_stage.transitioned", data
        case RunCreated():
            yield (
                "run.created",
                {
                    "run_id": event.run_id,
                    "experiment_id": event.experiment_id,
                    "run_name": event.name,
                    "user_id": event.user_id,
                    "start_time": event.start_time,
                    "tags": _tags(event.tags),
                },
            )
        case RunUpdated(status=status) if status in _RUN_END:
            data = {"run_id": event.run_id, "experiment_id": event.experiment_id, "status": status}
            yield _RUN_END[status], {**data, "end_time": event.end_time}
        case BatchLogged():
            for tag in event.tags:
                data = {"run_id": event.run_id, "experiment_id": event.experiment_id}
                yield "run_tag.set", {**data, "key": tag.key, "value": tag.value}
        case RunTagDeleted():
            data = {"run_id": event.run_id, "experiment_id": event.experiment_id, "key": event.key}
            yield "run_tag.deleted", data
        case LoggedModelCreated():
            yield (
                "logged_model.created",
                {
                    "model_id": event.model_id,
                    "experiment_id": event.experiment_id,
                    "name": event.name,
                    "source_run_id": event.source_run_id,
                    "model_type": event.model_type,
                    "tags": _tags(event.tags),
                },
            )
        case LoggedModelUpdated(status="LOGGED_MODEL_READY"):
            yield (
                "logged_model.ready",
                {
                    "model_id": event.model_id,
                    "experiment_id": event.experiment_id,
                    "status": "READY",
                },
            )


def example(kind: str) -> dict:
    """The data of a test delivery of ``kind`` (``test_webhook``)."""
    examples = {
        "registered_model.created": {
            "name": "example_model",
            "tags": {"example_key": "example_value"},
            "description": "An example registered model",
        },
        "model_version.created": {
            "name": "example_model",
            "version": "1",
            "source": "models:/123",
            "run_id": "abcd1234abcd5678",
            "tags": {"example_key": "example_value"},
            "description": "An example model version",
        },
        "model_version_tag.set": {
            "name": "example_model",
            "version": "1",
            "key": "example_key",
            "value": "v",
        },
        "model_version_tag.deleted": {"name": "example_model", "version": "1", "key": "example_key"},
        "model_version_alias.created": {"name": "example_model", "alias": "example_alias", "version": "1"},
        "model_version_alias.deleted": {"name": "example_model", "alias": "example_alias"},
        "model_version_stage.transitioned": {"name": "example_model", "version": "1", "stage": "Production"},
        "run.created": {
            "run_id": "abcd1234abcd5678",
            "experiment_id": "1",
            "run_name": "example_run",
            "user_id": "example_user",
            "start_time": 0,
            "tags": {},
        },
        "run_tag.set": {"run_id": "abcd1234abcd5678", "experiment_id": "1", "key": "stage", "value": "v"},
        "run_tag.deleted": {"run_id": "abcd1234abcd5678", "experiment_id": "1", "key": "stage"},
        "logged_model.created": {
            "model_id": "m-abcd1234",
            "experiment_id": "1",
            "name": "example_model",
            "source_run_id": "abcd1234abcd5678",
            "model_type": "",
            "tags": {},
        },
        "logged_model.ready": {"model_id": "m-abcd1234", "experiment_id": "1", "status": "READY"},
    }
    for status, end_kind in _RUN_END.items():
        examples[end_kind] = {
            "run_id": "abcd1234abcd5678",
            "experiment_id": "1",
            "status": status,
            "end_time": 0,
        }
    return examples[kind]
