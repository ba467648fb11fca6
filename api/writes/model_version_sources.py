"""Which sources a model version may name: MLflow 3.17.2's rules, so no version can point at a
file outside the artifact store (a version's files are served by ``/model-versions/get-artifact``).

A version of a run names a place inside that run's artifacts (``runs:/<run_id>/...`` or an
``mlflow-artifacts`` URI under the run's root); a version of a logged model names that model
(``models:/<model_id>``) or a place inside its artifacts. Local paths are refused: every artifact
root of this server is an ``mlflow-artifacts:`` URI, so no local path is inside one (MLflow
accepts a local path inside a run's local artifact root). Other object-store URIs (``s3://``,
``gs://`` ...) are recorded as given: this server never reads them. Relative-path tricks
(``..``, percent-encoded or not, NUL bytes) are refused everywhere.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse

from trackledger.api.errors import invalid
from trackledger.api.writes.write_index import WriteIndex

_ARTIFACT_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")


def check(index: WriteIndex, source: str, run_id: str | None, model_id: str | None) -> None:
    """Raise MLflow's 400 unless ``source`` lies within the run (or logged model) it names."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "models" and parsed.netloc:
        raise invalid(
            f"Invalid model version source: '{source}'. Registered model sources must use the "
            "active model registry."
        )
    if model_id:
        _check_model_source(index, source, model_id)
    else:
        _check_run_source(index, source, run_id)


def _check_run_source(index: WriteIndex, source: str, run_id: str | None) -> None:
    if _is_local(source):
        raise invalid(
            f"Invalid model version source: '{source}'. To use a local path as a model version "
            "source, the run_id request parameter has to be specified and the local path has to be "
            "contained within the artifact directory of the run specified by the run_id."
        )
    _refuse_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "runs":
        if parsed.netloc or not run_id or _runs_uri_run_id(source) != run_id:
            _refuse(source, "run_id")
        return
    if parsed.scheme == "models" and (_logged_model_id(source) is not None or parsed.netloc):
        _refuse(source, "model_id")
    if _is_mlflow_artifact_source(source):
        root = _run_artifact_root(index, run_id)
        if root is None or not _is_within(source, root):
            _refuse(source, "run_id")


def _check_model_source(index: WriteIndex, source: str, model_id: str) -> None:
    if _is_local(source):
        raise invalid(
            f"Invalid model version source: '{source}'. To use a local path as a model version "
            "source, the model_id request parameter has to be specified and the local path has to "
            "be contained within the artifact directory of the run specified by the model_id."
        )
    _refuse_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "models" and (named := _logged_model_id(source)) is not None:
        if named != model_id:
            _refuse(source, "model_id")
        return
    if parsed.scheme == "runs":
        _refuse(source, "model_id")
    if _is_mlflow_artifact_source(source):
        root = _model_artifact_root(index, model_id)
        if root is None or not _is_within(source, root):
            _refuse(source, "model_id")


def _refuse(source: str, id_name: str) -> None:
    raise invalid(
        f"Invalid model version source: '{source}'. The {id_name} request parameter must "
        "identify the resource that contains the source."
    )


def _refuse_relative_paths(source: str) -> None:
    """``..`` in any encoding, NUL bytes, or a path that normalises to something else."""
    while (unquoted := urllib.parse.unquote_plus(source)) != source:
        source = unquoted
    path = re.sub(r"/+", "/", urllib.parse.urlparse(source).path.rstrip("/"))
    if "\x00" in path or ".." in source.split("/") or (path and posixpath.normpath(path) != path):
        raise invalid(
            f"Invalid model version source: '{source}'. If supplying a source as an http, https, "
            "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
            "provided without relative path references present. Please provide an absolute path."
        )


def _is_local(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("", "file")


def _runs_uri_run_id(source: str) -> str | None:
    path = urllib.parse.urlparse(source).path.lstrip("/")
    return path.split("/", 1)[0] or None


def _logged_model_id(source: str) -> str | None:
    """``m-<hex>`` of ``models:/m-<hex>[/...]``; None for a registered model's name and version."""
    first = urllib.parse.urlparse(source).path.lstrip("/").split("/", 1)[0]
    return first if _LOGGED_MODEL_ID.match(first) else None


def _parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urllib.parse.urlsplit(uri)
    parts = []
    for part in parsed.path.split("/"):
        while (unquoted := urllib.parse.unquote(part)) != part:
            part = unquoted
        if part:
            parts.append(part)
    return parsed.scheme.lower(), parsed.netloc.lower(), tuple(parts)


def _is_mlflow_artifact_source(source: str) -> bool:
    scheme, _, parts = _parts(source)
    if scheme == "mlflow-artifacts":
        return True
    n = len(_ARTIFACT_ROUTE)
    return scheme in ("http", "https") and any(
        parts[i : i + n] == _ARTIFACT_ROUTE for i in range(len(parts) - n + 1)
    )


def _is_within(source: str, root: str) -> bool:
    """Whether ``source`` names ``root`` or a place below it (same scheme and host, path prefix)."""
    source_scheme, source_host, source_parts = _parts(source)
    root_scheme, root_host, root_parts = _parts(root)
    return (
        (source_scheme, source_host) == (root_scheme, root_host)
        and bool(root_parts)
        and source_parts[: len(root_parts)] == root_parts
    )


def _run_artifact_root(index: WriteIndex, run_id: str | None) -> str | None:
    run = index.runs.get(run_id) if run_id else None
    experiment = index.experiments.get(run.experiment_id) if run else None
    if experiment is None:
        return None
    return experiment.run_artifact_uri(run_id)


def _model_artifact_root(index: WriteIndex, model_id: str) -> str | None:
    model = index.logged_model(model_id)
    experiment = index.experiments.get(model.experiment_id) if model else None
    if experiment is None:
        return None
    return experiment.model_artifact_uri(model_id)
