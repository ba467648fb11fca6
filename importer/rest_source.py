"""A running MLflow server read through its REST API (any backend: Postgres, MySQL, SQLite).

Credentials are MLflow's usual environment: ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` (Basic), or ``MLFLOW_TRACKING_TOKEN`` (Bearer);
``MLFLOW_TRACKING_INSECURE_TLS`` and ``MLFLOW_TRACKING_SERVER_CERT_PATH`` for TLS. Every listing
is paged and every metric history is read a page at a time, so memory stays bounded.

What REST does not show cannot come over: deleted registry versions (their numbers) and deleted
logged models. Artifacts under ``mlflow-artifacts:/`` are downloaded through the server's proxy.
"""

from __future__ import annotations

import base64
import json
import math
import os
import urllib.parse
from collections.abc import Iterator

import pyarrow as pa
import urllib3
from trackledger.importer.records import (
    SourceError,
    SourceExperiment,
    SourceLoggedModel,
    SourceModelVersion,
    SourceRegisteredModel,
    SourceRun,
)
from trackledger.importer.sqlite_source import _model_id_of
from trackledger.ledger.events import Dataset, Metric, ModelOutput, Param, Tag
from trackledger.ledger.schema import metrics_array

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
HISTORY_PAGE = 25_000


def _tags(items) -> list[Tag]:
    return sorted((Tag(t["key"], t.get("value", "")) for t in items or []), key=lambda t: t.key)


def _float(value) -> float:
    if isinstance(value, str):  # MLflow writes NaN and infinities as JSON strings or bare tokens
        return float(value)
    return math.nan if value is None else float(value)


def credentials() -> dict[str, str]:
    """The ``Authorization`` header the mlflow client would send, from the same environment."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {}


def credentials_named() -> str:
    """Whose credentials ``credentials`` sends, for an error message (never the secret)."""
    if os.environ.get("MLFLOW_TRACKING_USERNAME") and os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        return f"user {os.environ['MLFLOW_TRACKING_USERNAME']!r} (MLFLOW_TRACKING_USERNAME/PASSWORD)"
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return "the token in MLFLOW_TRACKING_TOKEN"
    return "no credentials (set MLFLOW_TRACKING_USERNAME and _PASSWORD, or MLFLOW_TRACKING_TOKEN)"


class RestSource:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SourceError(f"{url} is not an http(s) URL")
        self.headers = {"User-Agent": "trackledger-import", **credentials()}
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true")
        self.http = urllib3.PoolManager(
            cert_reqs="CERT_NONE" if insecure else "CERT_REQUIRED",
            ca_certs=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"),
            retries=urllib3.Retry(
                total=5, connect=1, backoff_factor=0.5, status_forcelist=(429, 502, 503, 504)
            ),
            timeout=urllib3.Timeout(connect=10, read=120),
        )
        # run id -> its points logged against a logged model (filled by ``logged_models``, which the
        # importer reads first): REST's metric histories do not say which model a point was for.
        self._model_metrics: dict[str, dict] = {}
        self.call("GET", "/experiments/get", {"experiment_id": "0"}, allow=(404,))  # reachable, speaks MLflow

    def describe(self) -> str:
        parsed = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(
            parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else ""))
        )

    def close(self) -> None:
        self.http.clear()

    def call(self, method: str, path: str, params: dict | None = None, allow=()) -> dict:
        url = self.url + API + path
        try:
            if method == "GET":
                response = self.http.request("GET", url, fields=params, headers=self.headers)
            else:
                response = self.http.request(
                    "POST",
                    url,
                    body=json.dumps(params or {}).encode(),
                    headers={**self.headers, "Content-Type": "application/json"},
                )
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"cannot reach the MLflow server at {self.describe()}: {exc}") from None
        if response.status in allow:
            return {}
        if response.status != 200:
            text = response.data[:300].decode(errors="replace").replace("\n", " ")
            raise SourceError(f"{self.describe()}{API}{path} answered {response.status}: {text}")
        try:
            return json.loads(response.data)
        except ValueError:
            raise SourceError(f"{self.describe()} does not answer as an MLflow server ({path})") from None

    def _pages(self, method: str, path: str, params: dict, items: str) -> Iterator[dict]:
        token = None
        while True:
            page = self.call(method, path, {**params, **({"page_token": token} if token else {})})
            yield from page.get(items, [])
            token = page.get("next_page_token")
            if not token:
                return

    # Experiments and runs ------------------------------------------------------------

    def experiments(self) -> list[SourceExperiment]:
        found = [
            SourceExperiment(
                experiment_id=e["experiment_id"],
                name=e["name"],
                artifact_location=e.get("artifact_location", ""),
                lifecycle_stage=e.get("lifecycle_stage", "active"),
                creation_time=int(e.get("creation_time", 0)),
                last_update_time=int(e.get("last_update_time", e.get("creation_time", 0))),
                tags=_tags(e.get("tags")),
            )
            for e in self._pages(
                "POST", "/experiments/search", {"max_results": 1000, "view_type": "ALL"}, "experiments"
            )
        ]
        return sorted(found, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def _search_runs(self, experiment_ids: list[str]) -> Iterator[dict]:
        return self._pages(
            "POST",
            "/runs/search",
            {
                "experiment_ids": experiment_ids,
                "run_view_type": "ALL",
                "max_results": 1000,
                "order_by": ["attributes.start_time ASC", "attributes.run_id ASC"],
            },
            "runs",
        )

    def count_runs(self, experiment_ids: list[str]) -> int:
        return sum(1 for _ in self._search_runs(experiment_ids))

    def runs(self, experiment_ids: list[str]) -> Iterator[SourceRun]:
        for raw in self._search_runs(experiment_ids):
            yield run_record(raw)

    def run(self, run_id: str) -> SourceRun | None:
        """One run (deleted ones too), None if the server has no such run."""
        found = self.call("GET", "/runs/get", {"run_id": run_id}, allow=(404,))
        return run_record(found["run"]) if found else None

    def metric_chunks(self, runs: list[SourceRun], size: int) -> Iterator[tuple[str, pa.StructArray]]:
        for run in runs:
            for chunk in self._run_chunks(run, size):
                yield run.run_id, chunk

    def _run_chunks(self, run: SourceRun, size: int) -> Iterator[pa.StructArray]:
        latest = (
            self.call("GET", "/runs/get", {"run_id": run.run_id})["run"].get("data", {}).get("metrics", [])
        )
        linked = self._model_metrics.get(run.run_id, {})
        chunk: list[Metric] = []
        for key in sorted({m["key"] for m in latest}):
            for m in self._pages(
                "GET",
                "/metrics/get-history",
                {"run_id": run.run_id, "metric_key": key, "max_results": HISTORY_PAGE},
                "metrics",
            ):
                value, ts, step = _float(m.get("value")), int(m.get("timestamp", 0)), int(m.get("step", 0))
                link = linked.get((key, ts, step, value))
                chunk.append(Metric(key, value, ts, step, *(link or ())))
                if len(chunk) >= size:
                    yield metrics_array(chunk)
                    chunk = []
        if chunk:
            yield metrics_array(chunk)

    # Logged models and the registry ----------------------------------------------------

    def logged_models(self, experiment_ids: list[str]) -> Iterator[SourceLoggedModel]:
        for raw in self._pages(
            "POST", "/logged-models/search", {"experiment_ids": experiment_ids, "max_results": 100}, "models"
        ):
            info, data = raw["info"], raw.get("data", {})
            for m in data.get("metrics", []):
                if m.get("run_id"):
                    self._model_metrics.setdefault(m["run_id"], {})[
                        (m["key"], int(m["timestamp"]), int(m.get("step", 0)), _float(m.get("value")))
                    ] = (info["model_id"], m.get("dataset_name"), m.get("dataset_digest"))
            yield SourceLoggedModel(
                model_id=info["model_id"],
                experiment_id=info["experiment_id"],
                name=info["name"],
                artifact_location=info.get("artifact_uri", ""),
                creation_time=int(info.get("creation_timestamp_ms", 0)),
                last_updated_time=int(
                    info.get("last_updated_timestamp_ms", info.get("creation_timestamp_ms", 0))
                ),
                status=info.get("status", "LOGGED_MODEL_STATUS_UNSPECIFIED"),
                lifecycle_stage=info.get("lifecycle_stage", "active"),
                model_type=info.get("model_type", ""),
                source_run_id=info.get("source_run_id"),
                params=sorted(
                    (Param(p["key"], p.get("value", "")) for p in data.get("params", [])), key=lambda p: p.key
                ),
                tags=_tags(info.get("tags")),
            )

    def registered_models(self) -> Iterator[SourceRegisteredModel]:
        for raw in self._pages(
            "GET", "/registered-models/search", {"max_results": 1000}, "registered_models"
        ):
            name = raw["name"]
            versions = [
                SourceModelVersion(
                    version=int(v["version"]),
                    creation_time=int(v.get("creation_timestamp", 0)),
                    last_updated_time=int(v.get("last_updated_timestamp", v.get("creation_timestamp", 0))),
                    source=v.get("source", ""),
                    current_stage=v.get("current_stage", "None"),
                    description=v.get("description", ""),
                    user_id=v.get("user_id", ""),
                    run_id=v.get("run_id") or None,
                    model_id=v.get("model_id") or _model_id_of(v.get("source"), v.get("storage_location")),
                    tags=_tags(v.get("tags")),
                )
                for v in self._pages(
                    "GET",
                    "/model-versions/search",
                    {"filter": f"name = '{name.replace(chr(39), chr(92) + chr(39))}'", "max_results": 10_000},
                    "model_versions",
                )
            ]
            yield SourceRegisteredModel(
                name=name,
                creation_time=int(raw.get("creation_timestamp", 0)),
                last_updated_time=int(raw.get("last_updated_timestamp", raw.get("creation_timestamp", 0))),
                description=raw.get("description", ""),
                tags=_tags(raw.get("tags")),
                aliases=sorted((a["alias"], int(a["version"])) for a in raw.get("aliases", [])),
                versions=sorted(versions, key=lambda v: v.version),
            )


def run_record(raw: dict) -> SourceRun:
    """A run as REST shows it (``runs/search``, ``runs/get``)."""
    info, data, inputs = raw["info"], raw.get("data", {}), raw.get("inputs", {})
    return SourceRun(
        run_id=info["run_id"],
        experiment_id=info["experiment_id"],
        name=info.get("run_name", ""),
        user_id=info.get("user_id", ""),
        status=info.get("status", "RUNNING"),
        start_time=int(info.get("start_time", 0)),
        end_time=int(info["end_time"]) if info.get("end_time") is not None else None,
        lifecycle_stage=info.get("lifecycle_stage", "active"),
        artifact_uri=info.get("artifact_uri", ""),
        params=sorted(
            (Param(p["key"], p.get("value", "")) for p in data.get("params", [])), key=lambda p: p.key
        ),
        tags=_tags(data.get("tags")),
        datasets=[
            Dataset(
                d["dataset"]["name"],
                d["dataset"]["digest"],
                d["dataset"].get("source_type", ""),
                d["dataset"].get("source", ""),
                d["dataset"].get("schema"),
                d["dataset"].get("profile"),
                _tags(d.get("tags")),
            )
            for d in inputs.get("dataset_inputs", [])
        ],
        model_inputs=[ModelOutput(m["model_id"]) for m in inputs.get("model_inputs", [])],
        model_outputs=[
            ModelOutput(m["model_id"], int(m.get("step", 0)))
            for m in raw.get("outputs", {}).get("model_outputs", [])
        ],
        latest=sorted(
            (
                Metric(m["key"], _float(m.get("value")), int(m.get("timestamp", 0)), int(m.get("step", 0)))
                for m in data.get("metrics", [])
            ),
            key=lambda m: m.key,
        ),
    )


class ProxyFiles:
    """Artifacts served by an MLflow server's artifact proxy (``mlflow-artifacts:/`` URIs)."""

    def __init__(self, source: RestSource, fallback):
        self.source = source
        self.fallback = fallback  # other URIs (s3://, file://): read where they are

    def files(self, uri: str) -> Iterator[str]:
        from trackledger.importer.artifacts import proxy_path

        base = proxy_path(uri)
        if base is None:
            yield from self.fallback.files(uri)
            return
        pending = [""]
        while pending:
            relative = pending.pop()
            path = f"{base}/{relative}".rstrip("/")
            response = self.source.http.request(
                "GET", self.source.url + PROXY, fields={"path": path}, headers=self.source.headers
            )
            if response.status != 200:
                raise SourceError(f"listing artifacts at {uri} answered {response.status}")
            entries = json.loads(response.data).get("files", [])
            for entry in sorted(entries, key=lambda e: e["path"]):
                child = f"{relative}/{entry['path']}".strip("/")
                if entry.get("is_dir"):
                    pending.append(child)
                else:
                    yield child

    def open(self, uri: str, relpath: str):
        from trackledger.importer.artifacts import proxy_path

        base = proxy_path(uri)
        if base is None:
            return self.fallback.open(uri, relpath)
        quoted = urllib.parse.quote(f"{base}/{relpath}")
        response = self.source.http.request(
            "GET", f"{self.source.url}{PROXY}/{quoted}", headers=self.source.headers, preload_content=False
        )
        if response.status != 200:
            raise SourceError(f"downloading {uri}/{relpath} answered {response.status}")
        return response
