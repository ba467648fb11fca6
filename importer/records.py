"""What an MLflow source holds, in one shape whatever the source (SQL store, REST server).

A source yields these records; ``importer.events`` turns them into ledger events. Metric points
are not part of a run's record: a source streams them in chunks (``Source.metric_chunks``), so a run
with millions of points never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgspec
import pyarrow as pa
from trackledger.ledger.events import Dataset, Metric, ModelOutput, Param, Tag


class SourceExperiment(msgspec.Struct, frozen=True):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: list[Tag] = []


class SourceRun(msgspec.Struct, frozen=True):
    run_id: str
    experiment_id: str
    name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    deleted_time: int | None = None
    params: list[Param] = []
    tags: list[Tag] = []
    datasets: list[Dataset] = []
    model_inputs: list[ModelOutput] = []
    model_outputs: list[ModelOutput] = []
    latest: list[Metric] = []  # each key's latest point (MLflow's latest_metrics): for reruns


class SourceLoggedModel(msgspec.Struct, frozen=True):
    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_time: int
    last_updated_time: int
    status: str  # the REST enum name: LOGGED_MODEL_READY ...
    lifecycle_stage: str
    model_type: str = ""
    source_run_id: str | None = None
    params: list[Param] = []
    tags: list[Tag] = []


class SourceModelVersion(msgspec.Struct, frozen=True):
    version: int
    creation_time: int
    last_updated_time: int
    source: str
    current_stage: str = "None"
    description: str = ""
    user_id: str = ""
    run_id: str | None = None
    model_id: str | None = None
    deleted: bool = False
    tags: list[Tag] = []


class SourceRegisteredModel(msgspec.Struct, frozen=True):
    name: str
    creation_time: int
    last_updated_time: int
    description: str = ""
    tags: list[Tag] = []
    aliases: list[tuple[str, int]] = []
    versions: list[SourceModelVersion] = []


class SourceError(Exception):
    """The source cannot be read as an MLflow history; the message says why, in one line."""


class Source(Protocol):
    """An MLflow history, read-only. ``describe`` names it without credentials."""

    def describe(self) -> str: ...

    def experiments(self) -> list[SourceExperiment]: ...

    def count_runs(self, experiment_ids: list[str]) -> int:
        """The runs of these experiments, for progress. Metric points are counted as they are
        read: counting them first cost a third of the time of an import from SQLite."""
        ...

    def runs(self, experiment_ids: list[str]) -> Iterator[SourceRun]: ...

    def metric_chunks(self, runs: list[SourceRun], size: int) -> Iterator[tuple[str, pa.StructArray]]:
        """(run id, chunk) of the metric points (METRIC_TYPE) of ``runs``, run after run in the
        order given (runs without points yield nothing), each run's in a stable order, ``size``
        per chunk but its last: a rerun must cut the same chunks (their events' ids depend on it)."""
        ...

    def logged_models(self, experiment_ids: list[str]) -> Iterator[SourceLoggedModel]: ...

    def registered_models(self) -> Iterator[SourceRegisteredModel]: ...

    def close(self) -> None: ...
