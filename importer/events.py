"""Source records to ledger events, with ids derived from the source's own ids.

Every entity is written under one idempotency key made of what identifies it in any copy of the
source (a run's uuid; an experiment's id, name and creation time; a registered model's name and
creation time), and its i-th event gets ``keyed_event_id(key, i)``: the rule the server applies to
an ``Idempotency-Key``. A rerun derives the same ids, so the ledger appends nothing twice, and an
entity whose marker event is in the ledger is complete (``Unit.marker``, ``run_marker``).

Events keep the source's data times (start and end times, metric timestamps, creation times) and
say where they come from (``imported_from``) and when the change happened there (``source_time``).
The claimed actor is the source's user where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trackledger.importer.artifacts import CopiedFile
from trackledger.importer.records import (
    SourceExperiment,
    SourceLoggedModel,
    SourceRegisteredModel,
    SourceRun,
)
from trackledger.ledger.events import (
    ArtifactWritten,
    BatchLogged,
    Event,
    ExperimentCreated,
    ExperimentDeleted,
    InputsLogged,
    LoggedModelCreated,
    LoggedModelDeleted,
    ModelVersionCreated,
    ModelVersionDeleted,
    ModelVersionStageChanged,
    ModelVersionUpdated,
    OutputsLogged,
    RegisteredModelAliasSet,
    RegisteredModelCreated,
    RegisteredModelUpdated,
    RunCreated,
    RunDeleted,
    RunUpdated,
    keyed_event_id,
)

KEY_PREFIX = "mlflow-import"
USER_TAG = "mlflow.user"


@dataclass
class Unit:
    """One entity's events (an experiment, a logged model, a registered model), appended together."""

    key: str
    events: list[Event] = field(default_factory=list)
    imported_from: str = ""

    def add(self, cls: type[Event], /, **fields) -> None:
        fields.setdefault("imported_from", self.imported_from)
        self.events.append(cls(id=keyed_event_id(self.key, len(self.events)), **fields))

    @property
    def marker(self) -> str:
        """A unit is appended in one atomic append: its first event's presence means all of it."""
        return keyed_event_id(self.key, 0)


def experiment_key(exp: SourceExperiment) -> str:
    return f"{KEY_PREFIX}/experiment/{exp.experiment_id}/{exp.creation_time}/{exp.name}"


def run_key(run_id: str) -> str:
    return f"{KEY_PREFIX}/run/{run_id}"


def experiment_events(exp: SourceExperiment, target_id: str, location: str, origin: str) -> Unit:
    unit = Unit(experiment_key(exp), imported_from=origin)
    actor = next((t.value for t in exp.tags if t.key == USER_TAG), "")
    common = {"experiment_id": target_id, "actor": actor}
    unit.add(
        ExperimentCreated,
        **common,
        name=exp.name,
        artifact_location=location,
        creation_time=exp.creation_time,
        tags=list(exp.tags),
        source_time=exp.last_update_time,
    )
    if exp.lifecycle_stage == "deleted":
        unit.add(ExperimentDeleted, **common, source_time=exp.last_update_time)
    return unit


class RunEvents:
    """A run's events in order: created (with tags), params, metric chunks, inputs and outputs,
    end, lifecycle. A metric chunk's event is made as the source's chunk arrives; its points stay
    Arrow (``Target.append``'s ``points``)."""

    def __init__(self, run: SourceRun, target_experiment: str, artifact_uri: str, origin: str):
        self.run = run
        self.key = run_key(run.run_id)
        self.common = {"experiment_id": target_experiment, "run_id": run.run_id, "actor": run.user_id}
        self.origin = origin
        self.artifact_uri = artifact_uri
        self.count = 0

    def _event(self, cls: type[Event], **fields) -> Event:
        event = cls(
            id=keyed_event_id(self.key, self.count), **self.common, imported_from=self.origin, **fields
        )
        self.count += 1
        return event

    def head(self) -> list[Event]:
        run = self.run
        events = [
            self._event(
                RunCreated,
                name=run.name,
                user_id=run.user_id,
                start_time=run.start_time,
                artifact_uri=self.artifact_uri,
                status=run.status,
                tags=list(run.tags),
                source_time=run.start_time,
            )
        ]
        if run.params:
            events.append(self._event(BatchLogged, params=list(run.params), source_time=run.start_time))
        return events

    def metrics(self) -> Event:
        """The event of the run's next chunk of metric points (the points go beside it)."""
        return self._event(BatchLogged)

    def tail(self, artifacts: list[CopiedFile]) -> list[Event]:
        """The rest, after the metric chunks (``artifacts``: the run's copied files), ending with
        the run's final state under its own key: that event marks the run complete."""
        run = self.run
        events: list[Event] = []
        if run.datasets or run.model_inputs:
            events.append(
                self._event(InputsLogged, datasets=list(run.datasets), models=list(run.model_inputs))
            )
        if run.model_outputs:
            events.append(self._event(OutputsLogged, models=list(run.model_outputs)))
        events.extend(artifact_event(a, self.common, self.origin) for a in artifacts)
        if run.lifecycle_stage == "deleted":
            events.append(self._event(RunDeleted, source_time=run.deleted_time or run.end_time))
        events.append(
            RunUpdated(
                id=run_marker(run.run_id),
                **self.common,
                imported_from=self.origin,
                status=run.status,
                end_time=run.end_time,
                source_time=run.end_time or run.start_time,
            )
        )
        return events


def artifact_event(copied: CopiedFile, keys: dict, origin: str) -> ArtifactWritten:
    """A copied file's record. Its id derives from the file's own key, which a server's artifact
    proxy is given as the upload's Idempotency-Key: the proxy's record and this one are one event."""
    return ArtifactWritten(
        id=keyed_event_id(copied.key, 0),
        **keys,
        imported_from=origin,
        path=copied.path,
        size=copied.size,
        sha256=copied.sha256,
    )


def run_marker(run_id: str) -> str:
    """The id of a run's last imported event (its final state): present when the run is complete."""
    return keyed_event_id(f"{run_key(run_id)}/final", 0)


def logged_model_events(
    model: SourceLoggedModel,
    target_experiment: str,
    location: str,
    actor: str,
    origin: str,
    artifacts: list[CopiedFile],
) -> Unit:
    unit = Unit(f"{KEY_PREFIX}/logged-model/{model.model_id}", imported_from=origin)
    common = {"experiment_id": target_experiment, "model_id": model.model_id, "actor": actor}
    if model.source_run_id:
        common["run_id"] = model.source_run_id
    unit.add(
        LoggedModelCreated,
        **common,
        name=model.name,
        artifact_location=location,
        creation_time=model.creation_time,
        source_run_id=model.source_run_id,
        model_type=model.model_type,
        status=model.status,
        params=list(model.params),
        tags=list(model.tags),
        source_time=model.last_updated_time,
    )
    unit.events.extend(artifact_event(a, common, origin) for a in artifacts)
    if model.lifecycle_stage == "deleted":
        unit.add(LoggedModelDeleted, **common, source_time=model.last_updated_time)
    return unit


def registered_model_events(model: SourceRegisteredModel, origin: str) -> Unit:
    """The model as it is in the source: created with its tags, its versions (deleted ones created
    then deleted, so their numbers stay used), stages, aliases; last, its description at the
    source's last update time, which makes that the model's last update here too."""
    unit = Unit(f"{KEY_PREFIX}/registered-model/{model.name}/{model.creation_time}", imported_from=origin)
    model_key = keyed_event_id(unit.key, 0)
    names = {"name": model.name, "registered_model_id": model_key}
    unit.add(
        RegisteredModelCreated,
        **names,
        tags=list(model.tags),
        creation_time=model.creation_time,
        source_time=model.creation_time,
    )
    for v in model.versions:
        keys = {"actor": v.user_id, "run_id": v.run_id, "model_id": v.model_id}
        unit.add(
            ModelVersionCreated,
            **names,
            **keys,
            version=v.version,
            source=v.source,
            tags=list(v.tags),
            creation_time=v.creation_time,
            source_time=v.creation_time,
        )
        if v.current_stage not in ("None", ""):
            unit.add(
                ModelVersionStageChanged,
                **names,
                **keys,
                version=v.version,
                stage=v.current_stage,
                source_time=v.last_updated_time,
            )
        if v.deleted:
            unit.add(ModelVersionDeleted, **names, **keys, version=v.version, source_time=v.last_updated_time)
        else:
            unit.add(
                ModelVersionUpdated,
                **names,
                **keys,
                version=v.version,
                description=v.description,
                source_time=v.last_updated_time,
            )
    for alias, version in model.aliases:
        unit.add(
            RegisteredModelAliasSet, **names, key=alias, version=version, source_time=model.last_updated_time
        )
    unit.add(
        RegisteredModelUpdated, **names, description=model.description, source_time=model.last_updated_time
    )
    return unit
