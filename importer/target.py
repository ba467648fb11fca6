"""Where imported events go: a store opened offline (like ``rebuild``), or a running server.

A target answers four questions and takes two writes: which experiments it has, which of some
event ids it holds (an entity's marker: is it imported already?), and which experiment an event
was for (so a rerun finds where a remapped experiment went), and what it holds for a run imported
before (a rerun appends what changed since, see ``delta``); it appends already-formed events
(their metric points as Arrow arrays) and stores artifact files. When an append is durable is
the target's affair; ``sync`` makes everything durable.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from pathlib import Path
from typing import BinaryIO, Protocol

import msgspec
import pyarrow as pa
import urllib3
from trackledger.importer.artifacts import CHUNK, ArtifactSink, FsspecFiles
from trackledger.importer.delta import POINT_COLUMNS, TargetRun, points_table
from trackledger.importer.records import SourceError
from trackledger.importer.rest_source import (
    HISTORY_PAGE,
    ProxyFiles,
    RestSource,
    credentials,
    credentials_named,
)
from trackledger.ledger import Ledger
from trackledger.ledger.bulk import BulkWriter
from trackledger.ledger.events import Event
from trackledger.ledger.schema import metrics_list
from trackledger.projections import Projection


class Target(Protocol):
    def experiments(self) -> dict[str, str]:
        """experiment id -> name, every experiment (deleted ones too)."""
        ...

    def known(self, ids: list[str]) -> dict[str, str | None]:
        """Of these event ids, those in the ledger, with their experiment id."""
        ...

    def held(self, run_id: str, folder: str) -> TargetRun | None:
        """What the target holds for an imported run whose artifacts are under ``folder`` (a path
        under the artifact root); None if it has no such run."""
        ...

    def append(self, events: list[Event], points: dict[int, pa.Array] | None = None) -> int:
        """Append already-formed events (ids kept); returns how many were new. ``points``: the
        metric points of some of them (by position), as Arrow arrays of METRIC_TYPE."""
        ...

    def sync(self) -> None:
        """Everything appended so far is durable."""
        ...

    def write_artifact(self, path: str, stream: BinaryIO, idempotency_key: str) -> tuple[int, str]:
        """Store a file at ``path`` under the artifact root; its size and sha256."""
        ...

    def close(self) -> None: ...


class StoreTarget:
    """The store itself, with the server stopped: events go straight into segments through the
    ledger's bulk writer (no WAL: see ``ledger.bulk``), published by size and age and at the end;
    the projection is read to find what is there already and brought up to date at the end."""

    def __init__(
        self,
        store: str,
        state_dir: str | os.PathLike,
        artifacts: str,
        storage_options=None,
        artifact_options=None,
    ):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.ledger = Ledger(store, self.state_dir, storage_options=storage_options)
        except RuntimeError as exc:
            if "another ledger process" not in str(exc):
                raise
            raise SourceError(
                f"the store {store} is in use by a running server (state {self.state_dir}): "
                "import through it with --server URL, or stop it first"
            ) from None
        self.projection = Projection(self.ledger, self.state_dir / "projections.duckdb")
        self.sink = ArtifactSink(artifacts, artifact_options)
        self._bulk: BulkWriter | None = None  # opened by the first append (a dry run writes nothing)

    def experiments(self) -> dict[str, str]:
        return dict(self.projection.read("SELECT experiment_id, name FROM experiments"))

    def known(self, ids: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            marks = ",".join("?" * len(part))
            found.update(
                self.projection.read(f"SELECT id, experiment_id FROM events WHERE id IN ({marks})", part)
            )
        return found

    def held(self, run_id: str, folder: str) -> TargetRun | None:
        read = self.projection.read
        found = read("SELECT status, end_time, lifecycle_stage FROM runs WHERE run_id = ?", [run_id])
        if not found:
            return None
        (status, end_time, stage) = found[0]
        prefix = f"{folder}/"
        return TargetRun(
            status=status,
            end_time=end_time,
            lifecycle_stage=stage,
            params=dict(read("SELECT key, value FROM params WHERE run_id = ?", [run_id])),
            tags=dict(read("SELECT key, value FROM run_tags WHERE run_id = ?", [run_id])),
            datasets=set(read("SELECT name, digest FROM dataset_inputs WHERE run_id = ?", [run_id])),
            model_inputs=set(read("SELECT model_id, step FROM model_inputs WHERE run_id = ?", [run_id])),
            model_outputs=set(read("SELECT model_id, step FROM model_outputs WHERE run_id = ?", [run_id])),
            artifacts={
                path.removeprefix(prefix)
                for (path,) in read("SELECT path FROM artifacts WHERE run_id = ?", [run_id])
                if path.startswith(prefix)
            },
            points=self.projection.query(_points_of, run_id),
        )

    def _writer(self) -> BulkWriter:
        if self._bulk is None:
            self._bulk = self.ledger.bulk()
        return self._bulk

    def append(self, events: list[Event], points: dict[int, pa.Array] | None = None) -> int:
        return self._writer().add(events, points)

    def sync(self) -> None:
        if self._bulk is not None:
            self._bulk.publish()

    def write_artifact(self, path: str, stream: BinaryIO, idempotency_key: str) -> tuple[int, str]:
        return self.sink.write(path, stream)

    def close(self) -> None:
        """Publish what is left and catch the projection up (SQL over the segments, as a rebuild)."""
        try:
            if self._bulk is not None:
                self._bulk.close()
        finally:
            self.projection.close()
            self.ledger.roll()
            Projection(self.ledger, self.state_dir / "projections.duckdb").close()
            self.ledger.close()


class ServerTarget:
    """A running trackledger server: events go to its native import route (appended through its
    write service, ids kept), artifacts through its artifact proxy (the file's key as the upload's
    Idempotency-Key), and what it holds is asked over HTTP.

    Credentials are the mlflow client's (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD`` or
    ``MLFLOW_TRACKING_TOKEN``); with auth on, they must be an admin's. The first requests only
    read (the plan), so wrong credentials stop the import before anything is written."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.http = urllib3.PoolManager(
            retries=urllib3.Retry(
                total=5,
                connect=1,
                backoff_factor=0.5,
                status_forcelist=(429, 502, 503, 504),
                allowed_methods=None,
            ),
            timeout=urllib3.Timeout(connect=10, read=600),
        )
        self._encoder = msgspec.msgpack.Encoder()
        self.headers = credentials()
        self._rest: RestSource | None = None  # the server read as an MLflow server, for ``held``

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        **extra,
    ) -> dict:
        try:
            response = self.http.request(
                method,
                self.url + path,
                body=body,
                headers={**self.headers, "Content-Type": content_type},
                **extra,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"cannot reach the trackledger server at {self.url}: {exc}") from None
        self._check_allowed(response.status)
        if response.status != 200:
            text = response.data[:300].decode(errors="replace").replace("\n", " ")
            raise SourceError(f"{self.url}{path} answered {response.status}: {text}")
        return json.loads(response.data or b"{}")

    def _check_allowed(self, status: int) -> None:
        if status == 401:
            raise SourceError(
                f"the trackledger server at {self.url} did not accept {credentials_named()} (401)"
            )
        if status == 403:
            raise SourceError(
                f"the trackledger server at {self.url} refused {credentials_named()} (403): importing "
                "needs an admin (imported events may be of any type and name other users)"
            )

    def experiments(self) -> dict[str, str]:
        found: dict[str, str] = {}
        token = None
        while True:
            body = {"view_type": "ALL", "max_results": 1000, **({"page_token": token} if token else {})}
            page = self._call("POST", "/api/2.0/mlflow/experiments/search", json.dumps(body).encode())
            found.update((e["experiment_id"], e["name"]) for e in page.get("experiments", []))
            token = page.get("next_page_token")
            if not token:
                return found

    def known(self, ids: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for start in range(0, len(ids), 1000):
            body = json.dumps({"ids": ids[start : start + 1000]}).encode()
            found.update(self._call("POST", "/api/ledger/import/known", body)["known"])
        return found

    def held(self, run_id: str, folder: str) -> TargetRun | None:
        """Read as an mlflow client reads it: the run, its metric histories, its artifact listing."""
        if self._rest is None:
            self._rest = RestSource(self.url)
        run = self._rest.run(run_id)
        if run is None:
            return None
        chunks = [chunk for _, chunk in self._rest.metric_chunks([run], HISTORY_PAGE)]
        files = ProxyFiles(self._rest, FsspecFiles(None))
        return TargetRun(
            status=run.status,
            end_time=run.end_time,
            lifecycle_stage=run.lifecycle_stage,
            params={p.key: p.value for p in run.params},
            tags={t.key: t.value for t in run.tags},
            datasets={(d.name, d.digest) for d in run.datasets},
            model_inputs={(m.model_id, m.step) for m in run.model_inputs},
            model_outputs={(m.model_id, m.step) for m in run.model_outputs},
            artifacts=set(files.files(f"mlflow-artifacts:/{folder}")),
            points=points_table(chunks).select(list(POINT_COLUMNS)),
        )

    def append(self, events: list[Event], points: dict[int, pa.Array] | None = None) -> int:
        if points:
            events = [
                msgspec.structs.replace(e, metrics=metrics_list(points[i])) if i in points else e
                for i, e in enumerate(events)
            ]
        body = self._encoder.encode({"events": events})
        return self._call("POST", "/api/ledger/import", body, "application/msgpack")["appended"]

    def sync(self) -> None:
        """Nothing to wait for: the server answers once the events are durable."""

    def write_artifact(self, path: str, stream: BinaryIO, idempotency_key: str) -> tuple[int, str]:
        hashing = _Hashing(stream)
        url = f"{self.url}/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(path)}"
        try:
            response = self.http.request(
                "PUT",
                url,
                body=hashing,
                headers={**self.headers, "Idempotency-Key": idempotency_key},
                chunked=True,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"uploading {path} to {self.url} failed: {exc}") from None
        self._check_allowed(response.status)
        if response.status != 200:
            raise SourceError(f"uploading {path} to {self.url} answered {response.status}")
        return hashing.size, hashing.digest.hexdigest()

    def close(self) -> None:
        self.http.clear()
        if self._rest is not None:
            self._rest.close()


def _points_of(cursor, run_id: str) -> pa.Table:
    return cursor.sql(
        "SELECT key, value, timestamp, step FROM metrics WHERE run_id = ?", params=[run_id]
    ).to_arrow_table()


class _Hashing:
    """A stream read in chunks for an upload, hashed and counted on the way."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def __iter__(self):
        while block := self.stream.read(CHUNK):
            self.digest.update(block)
            self.size += len(block)
            yield block
