"""Artifacts: the events of a stored file and of deleted ones. Paths in MLflow's layout
(``<experiment>/<run>/artifacts/...``, ``<experiment>/models/<model>/artifacts/...``) name the
entity a file belongs to."""

from __future__ import annotations

import re

from trackledger.api.writes.envelope import Envelope
from trackledger.api.writes.write_index import WriteIndex
from trackledger.ledger.events import ArtifactFile, ArtifactsDeleted, ArtifactWritten, Event

_RUN_PATH = re.compile(r"^(?P<exp>\d+)/(?P<run>[0-9a-f]{32})/artifacts(/|$)")
_MODEL_PATH = re.compile(r"^(?P<exp>\d+)/models/(?P<model>m-[0-9a-f]{32})/artifacts(/|$)")


def entity_keys(path: str) -> dict:
    """Experiment, run and model ids when the path follows MLflow's artifact layout."""
    if m := _RUN_PATH.match(path):
        return {"experiment_id": m["exp"], "run_id": m["run"]}
    if m := _MODEL_PATH.match(path):
        return {"experiment_id": m["exp"], "model_id": m["model"]}
    return {}


def written(index: WriteIndex, envelope: Envelope, path: str, size: int, sha256: str) -> list[Event]:
    """Recorded whatever the path: the file is stored already."""
    return [ArtifactWritten(**envelope(0, **entity_keys(path)), path=path, size=size, sha256=sha256)]


def deleted(index: WriteIndex, envelope: Envelope, path: str, files: list[ArtifactFile]) -> list[Event]:
    """Recorded before the files go: who deleted which files, with their sizes and hashes."""
    return [ArtifactsDeleted(**envelope(0, **entity_keys(path)), path=path, files=files)]
