"""The event types of the ledger: one immutable msgspec Struct per kind of change.

Every log call becomes exactly one event. Events form a tagged union on the ``type``
field. The envelope (``id``, ``seq``, ``ts``, ``actor`` ...) is shared; ``seq`` and ``ts``
are stamped by the ledger when the event is appended.

Schema evolution: add fields with defaults only; never rename, retype or remove one.
A top-level field name means the same thing, with the same type, in every event type,
because each one becomes one Parquet column (see ``ledger.schema``).
"""

from __future__ import annotations

import os
import time
import uuid

import msgspec

# 2: registry renames, updates, deletes, tags and stages (registered_model_id, new_name, stage)
# 3: webhooks (webhook_id, url, webhook_events, secret_sealed, filter_experiment_ids, filter_tag_key)
# 4: artifact deletions (artifacts_deleted: files, a list of path, size and sha256)
# 5: imported history (imported_from, source_time; creation_time of registry creations)
# 6: accounts, tokens and permissions (username, password_hash, is_admin, token_id, token_hash,
#    expires_at, resource_type, resource_id, permission)
# 7: params logged to a logged model after its creation (logged_model_params_logged)
SCHEMA_VERSION = 7

# Fields that hold a credential's hash: never shown by the API, the SQL endpoint or the CLI.
SECRET_FIELDS = frozenset({"password_hash", "token_hash"})


class Tag(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str
    value: str


class Param(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str
    value: str


class Metric(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class Dataset(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str | None = None
    profile: str | None = None
    tags: list[Tag] = []


class ModelOutput(msgspec.Struct, frozen=True, omit_defaults=True):
    model_id: str
    step: int = 0


class ArtifactFile(msgspec.Struct, frozen=True, omit_defaults=True):
    """One stored file: its path under the artifact root, size and SHA-256."""

    path: str
    size: int
    sha256: str


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True):
    """The envelope every event carries.

    ``actor`` is the authenticated principal when ``actor_verified`` is true, otherwise
    whatever the client claimed (for MLflow clients, the ``mlflow.user`` it sends).

    Imported events (``trackledger import``) name their origin in ``imported_from`` (the source,
    without credentials; ``ts`` is then the import time) and, in ``source_time``, when the change
    happened there: read models take that time, not ``ts``, wherever a change's time is data (an
    experiment's or a registered model's last update).

    ``claimed_actor`` is set only beside a verified actor who acted for someone else: an import
    through a server with accounts, where the importer is verified and the user the source names
    stays a claim.
    """

    id: str
    seq: int = 0
    ts: int = 0
    actor: str = ""
    actor_verified: bool = False
    writer: str = ""
    remote_addr: str | None = None
    user_agent: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    imported_from: str | None = None
    source_time: int | None = None
    claimed_actor: str | None = None


# Experiments ----------------------------------------------------------------------


class ExperimentCreated(Event, frozen=True, tag="experiment_created"):
    name: str
    artifact_location: str
    creation_time: int
    tags: list[Tag] = []


class ExperimentRenamed(Event, frozen=True, tag="experiment_renamed"):
    name: str


class ExperimentDeleted(Event, frozen=True, tag="experiment_deleted"):
    pass


class ExperimentRestored(Event, frozen=True, tag="experiment_restored"):
    pass


class ExperimentTagSet(Event, frozen=True, tag="experiment_tag_set"):
    key: str
    value: str


class ExperimentTagDeleted(Event, frozen=True, tag="experiment_tag_deleted"):
    key: str


# Runs -----------------------------------------------------------------------------


class RunCreated(Event, frozen=True, tag="run_created"):
    name: str
    user_id: str
    start_time: int
    artifact_uri: str
    status: str = "RUNNING"
    tags: list[Tag] = []


class RunUpdated(Event, frozen=True, tag="run_updated"):
    """A change of status, end time and/or name; absent fields are unchanged."""

    status: str | None = None
    end_time: int | None = None
    name: str | None = None


class RunDeleted(Event, frozen=True, tag="run_deleted"):
    pass


class RunRestored(Event, frozen=True, tag="run_restored"):
    pass


class BatchLogged(Event, frozen=True, tag="batch_logged"):
    """One log call: log-metric, log-parameter, set-tag and log-batch all become this."""

    params: list[Param] = []
    metrics: list[Metric] = []
    tags: list[Tag] = []


class RunTagDeleted(Event, frozen=True, tag="run_tag_deleted"):
    key: str


class InputsLogged(Event, frozen=True, tag="inputs_logged"):
    datasets: list[Dataset] = []
    models: list[ModelOutput] = []


class OutputsLogged(Event, frozen=True, tag="outputs_logged"):
    models: list[ModelOutput] = []


class ArtifactWritten(Event, frozen=True, tag="artifact_written"):
    """A file stored through the artifact proxy. ``path`` is relative to the artifact root."""

    path: str
    size: int
    sha256: str


class ArtifactsDeleted(Event, frozen=True, tag="artifacts_deleted"):
    """Files deleted through the artifact proxy: ``path`` as requested (a file or a folder),
    ``files`` each file removed, with the size and SHA-256 it had."""

    path: str
    files: list[ArtifactFile] = []


# Logged models (MLflow 3) ---------------------------------------------------------


class LoggedModelCreated(Event, frozen=True, tag="logged_model_created"):
    name: str
    artifact_location: str
    creation_time: int
    source_run_id: str | None = None
    model_type: str = ""
    status: str = "LOGGED_MODEL_PENDING"
    params: list[Param] = []
    tags: list[Tag] = []


class LoggedModelUpdated(Event, frozen=True, tag="logged_model_updated"):
    status: str | None = None


class LoggedModelTagsSet(Event, frozen=True, tag="logged_model_tags_set"):
    tags: list[Tag] = []


class LoggedModelParamsLogged(Event, frozen=True, tag="logged_model_params_logged"):
    """Params of a logged model after its creation; like a run's, the first value of a key stays."""

    params: list[Param] = []


class LoggedModelTagDeleted(Event, frozen=True, tag="logged_model_tag_deleted"):
    key: str


class LoggedModelDeleted(Event, frozen=True, tag="logged_model_deleted"):
    pass


# Model registry -------------------------------------------------------------------
# Each registry event names its model by ``name`` as it was then (for a readable history) and by
# ``registered_model_id``, the id of the event that created it, which survives renames and tells a
# deleted model from a later one of the same name. Events written before renames existed carry
# none: their model's key is its name, which could not change then.


class RegisteredModelCreated(Event, frozen=True, tag="registered_model_created"):
    """``creation_time``: set by imports (the source's); otherwise the event's ``ts`` is the time."""

    name: str
    description: str = ""
    tags: list[Tag] = []
    registered_model_id: str | None = None
    creation_time: int | None = None


class RegisteredModelRenamed(Event, frozen=True, tag="registered_model_renamed"):
    """``versions``: the model's versions then, whose last update the rename moves (as MLflow's
    does), named here so that a replay moves the same ones."""

    name: str
    new_name: str
    registered_model_id: str | None = None
    versions: list[int] = []


class RegisteredModelUpdated(Event, frozen=True, tag="registered_model_updated"):
    name: str
    description: str = ""
    registered_model_id: str | None = None


class RegisteredModelDeleted(Event, frozen=True, tag="registered_model_deleted"):
    """The model, its versions, tags and aliases are gone; its name is free again."""

    name: str
    registered_model_id: str | None = None


class RegisteredModelTagSet(Event, frozen=True, tag="registered_model_tag_set"):
    name: str
    key: str
    value: str
    registered_model_id: str | None = None


class RegisteredModelTagDeleted(Event, frozen=True, tag="registered_model_tag_deleted"):
    name: str
    key: str
    registered_model_id: str | None = None


class ModelVersionCreated(Event, frozen=True, tag="model_version_created"):
    name: str
    version: int
    source: str
    description: str = ""
    tags: list[Tag] = []
    registered_model_id: str | None = None
    creation_time: int | None = None


class ModelVersionUpdated(Event, frozen=True, tag="model_version_updated"):
    """A new description; None clears it (MLflow's update without a description does)."""

    name: str
    version: int
    description: str | None = None
    registered_model_id: str | None = None


class ModelVersionStageChanged(Event, frozen=True, tag="model_version_stage_changed"):
    """``stage`` is canonical: None, Staging, Production or Archived."""

    name: str
    version: int
    stage: str
    registered_model_id: str | None = None


class ModelVersionDeleted(Event, frozen=True, tag="model_version_deleted"):
    """The version is gone, with the aliases pointing to it; its number is never used again."""

    name: str
    version: int
    registered_model_id: str | None = None


class ModelVersionTagSet(Event, frozen=True, tag="model_version_tag_set"):
    name: str
    version: int
    key: str
    value: str
    registered_model_id: str | None = None


class ModelVersionTagDeleted(Event, frozen=True, tag="model_version_tag_deleted"):
    name: str
    version: int
    key: str
    registered_model_id: str | None = None


class RegisteredModelAliasSet(Event, frozen=True, tag="registered_model_alias_set"):
    name: str
    key: str
    version: int
    registered_model_id: str | None = None


class RegisteredModelAliasDeleted(Event, frozen=True, tag="registered_model_alias_deleted"):
    name: str
    key: str
    registered_model_id: str | None = None


# Webhooks -------------------------------------------------------------------------
# A webhook's secret is stored sealed (encrypted with the server's key), never in clear.


class WebhookCreated(Event, frozen=True, tag="webhook_created"):
    """``webhook_events``: the kinds it hears, as ``entity.action`` (``model_version.created``);
    ``filter_*``: only events of these experiments, only tags with this key (empty: all)."""

    webhook_id: str
    name: str
    url: str
    webhook_events: list[str]
    status: str
    description: str = ""
    secret_sealed: str | None = None
    filter_experiment_ids: list[str] = []
    filter_tag_key: str | None = None


class WebhookUpdated(Event, frozen=True, tag="webhook_updated"):
    """Absent fields are unchanged; ``secret_sealed`` "" removes the secret, ``filter_tag_key``
    "" the tag filter."""

    webhook_id: str
    name: str | None = None
    url: str | None = None
    webhook_events: list[str] | None = None
    status: str | None = None
    description: str | None = None
    secret_sealed: str | None = None
    filter_experiment_ids: list[str] | None = None
    filter_tag_key: str | None = None


class WebhookDeleted(Event, frozen=True, tag="webhook_deleted"):
    webhook_id: str


# Accounts -------------------------------------------------------------------------
# Who may do what is history too: each change of an account, a token or a permission is an event
# whose actor is the admin (or the user) who made it. Passwords are stored as slow-KDF hashes and
# tokens as digests, never in clear.


class UserCreated(Event, frozen=True, tag="user_created"):
    username: str
    password_hash: str
    is_admin: bool = False


class UserPasswordChanged(Event, frozen=True, tag="user_password_changed"):
    username: str
    password_hash: str


class UserAdminChanged(Event, frozen=True, tag="user_admin_changed"):
    username: str
    is_admin: bool = False


class UserDeleted(Event, frozen=True, tag="user_deleted"):
    """The user's tokens and permissions go with it; the name may be created again."""

    username: str


class TokenCreated(Event, frozen=True, tag="token_created"):
    """A personal access token of ``username``: ``token_hash`` is the SHA-256 of the token (a
    random 256-bit secret, so no slow KDF is needed). ``expires_at``: ms, None for never."""

    username: str
    token_id: str
    token_hash: str
    expires_at: int | None = None
    description: str = ""


class TokenRevoked(Event, frozen=True, tag="token_revoked"):
    username: str
    token_id: str


class PermissionGranted(Event, frozen=True, tag="permission_granted"):
    """``resource_type`` experiment or registered_model; ``resource_id`` the experiment id or the
    registered_model_id (which survives renames). A grant replaces the user's earlier one."""

    username: str
    resource_type: str
    resource_id: str
    permission: str


class PermissionRevoked(Event, frozen=True, tag="permission_revoked"):
    username: str
    resource_type: str
    resource_id: str


AnyEvent = (
    ExperimentCreated
    | ExperimentRenamed
    | ExperimentDeleted
    | ExperimentRestored
    | ExperimentTagSet
    | ExperimentTagDeleted
    | RunCreated
    | RunUpdated
    | RunDeleted
    | RunRestored
    | BatchLogged
    | RunTagDeleted
    | InputsLogged
    | OutputsLogged
    | ArtifactWritten
    | ArtifactsDeleted
    | LoggedModelCreated
    | LoggedModelUpdated
    | LoggedModelTagsSet
    | LoggedModelParamsLogged
    | LoggedModelTagDeleted
    | LoggedModelDeleted
    | RegisteredModelCreated
    | RegisteredModelRenamed
    | RegisteredModelUpdated
    | RegisteredModelDeleted
    | RegisteredModelTagSet
    | RegisteredModelTagDeleted
    | ModelVersionCreated
    | ModelVersionUpdated
    | ModelVersionStageChanged
    | ModelVersionDeleted
    | ModelVersionTagSet
    | ModelVersionTagDeleted
    | RegisteredModelAliasSet
    | RegisteredModelAliasDeleted
    | WebhookCreated
    | WebhookUpdated
    | WebhookDeleted
    | UserCreated
    | UserPasswordChanged
    | UserAdminChanged
    | UserDeleted
    | TokenCreated
    | TokenRevoked
    | PermissionGranted
    | PermissionRevoked
)

EVENT_TYPES: tuple[type[Event], ...] = AnyEvent.__args__
TYPE_BY_TAG: dict[str, type[Event]] = {t.__struct_config__.tag: t for t in EVENT_TYPES}


# The one idempotency rule (DESIGN.md): whoever derives ids from a key (the server from a request's
# Idempotency-Key, an import from the source's own ids) derives the same ones. The logging client,
# which imports nothing of the server, keeps a copy (client/trackledger_client/ids.py):
# tests/client/test_ids.py holds the two to each other.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c1a52-5d0e-4a55-9d0c-7a6b8f2f4c11")


def keyed_event_id(key: str, i: int) -> str:
    """The id of the i-th event written under idempotency key ``key``."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{key}#{i}"))


def keyed_entity_id(key: str, purpose: str) -> str:
    """A stable id for an entity (a run, a logged model) created under idempotency key ``key``."""
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{key}/{purpose}").hex


def new_event_id() -> str:
    """A time-ordered unique id (UUIDv7 layout): 48 bits of ms time, then randomness."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
