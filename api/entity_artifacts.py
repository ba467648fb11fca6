"""Artifacts named by what they belong to: a run (``artifacts/list``, ``/get-artifact``, the UI's
``upload-artifact``), a logged model (``logged-models/<id>/artifacts/...``) or a model version
(``/model-versions/get-artifact``).

Each resolves its owner's artifact root to a folder of the artifact store, then uses the proxy's
own upload, download and listing (``api.artifacts``), with its path checks: a path can never leave
that folder, and an owner whose artifacts live elsewhere (an experiment created with an
``s3://`` location) is refused rather than fetched.
"""

from __future__ import annotations

import posixpath
import urllib.parse

from starlette.requests import Request
from trackledger.api import artifacts
from trackledger.api.errors import MlflowError, invalid, not_found
from trackledger.api.http import json_response, query
from trackledger.api.threads import blocking, read_after_writes
from trackledger.projections import logged_models as logged_model_reads
from trackledger.projections import registry as registry_reads
from trackledger.projections import runs as run_reads

STORE_SCHEME = "mlflow-artifacts"


def store_folder(uri: str) -> str:
    """The artifact store's folder behind an ``mlflow-artifacts:`` URI; others are not ours."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != STORE_SCHEME:
        raise invalid(f"The artifacts at '{uri}' are not in this server's artifact store")
    return artifacts.safe_path(parsed.path.lstrip("/"))


def _joined(root: str, path: str | None) -> str:
    relative = artifacts.safe_path(path or "", allow_empty=True)
    return posixpath.join(root, relative) if relative else root


async def _run_root(ctx, run_id: str | None) -> str:
    if not run_id:
        raise invalid("Request must specify run_uuid.")
    run = await read_after_writes(ctx, ctx.projection.query, run_reads.run, run_id)
    if run is None:
        raise not_found(f"Run '{run_id}' not found")
    return run["info"]["artifact_uri"]


async def _model_root(ctx, model_id: str) -> str:
    model = await read_after_writes(ctx, ctx.projection.query, logged_model_reads.logged_model, model_id)
    if model is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return model["info"]["artifact_uri"]


async def _listing(ctx, root_uri: str, path: str | None) -> dict:
    folder = store_folder(root_uri)
    relative = artifacts.safe_path(path or "", allow_empty=True)
    files = await blocking(ctx.artifacts.listing, _joined(folder, relative))
    for entry in files:  # the tracking API names files from the owner's root
        entry["path"] = posixpath.join(relative, entry["path"]) if relative else entry["path"]
    return {"root_uri": root_uri, "files": files} if files else {"root_uri": root_uri}


async def list_run_artifacts(ctx, request: Request):
    """MLflow's ListArtifacts of the tracking API: one page holds every entry."""
    artifacts.check_utf8(request)
    root = await _run_root(ctx, query(request, "run_id") or query(request, "run_uuid"))
    return json_response(await _listing(ctx, root, query(request, "path")))


async def get_run_artifact(request: Request):
    ctx = request.app.state.ctx
    root = await _run_root(ctx, query(request, "run_id") or query(request, "run_uuid"))
    return await _download(ctx, request, root, query(request, "path"))


async def _download(ctx, request: Request, root_uri: str, path: str | None):
    artifacts.check_utf8(request)
    if not path:
        raise invalid("Request must specify path.")
    return await artifacts.download(ctx, request, _joined(store_folder(root_uri), path))


async def upload_run_artifact(ctx, request: Request):
    """The web UI's upload (MLflow's ``upload-artifact``): the body is the file."""
    root = await _run_root(ctx, query(request, "run_uuid") or query(request, "run_id"))
    path = query(request, "path")
    if not path:
        raise invalid("Request must specify path.")
    if posixpath.normpath(path).startswith("..") or posixpath.isabs(path) or "\\" in path:
        raise invalid(f"Invalid path: '{path}'")
    if not int(request.headers.get("content-length") or 0) and "chunked" not in request.headers.get(
        "transfer-encoding", ""
    ):
        raise invalid("Request must specify data.")
    return await artifacts.upload(ctx, request, _joined(store_folder(root), path))


async def list_model_artifacts(ctx, request: Request, model_id: str):
    root = await _model_root(ctx, model_id)
    return json_response(await _listing(ctx, root, query(request, "artifact_directory_path")))


async def get_model_artifact(ctx, request: Request, model_id: str):
    root = await _model_root(ctx, model_id)
    return await _download(ctx, request, root, query(request, "artifact_file_path"))


async def get_model_version_artifact(request: Request):
    """A file of a model version: below the run or logged model its (validated) source names."""
    ctx = request.app.state.ctx
    name, version = query(request, "name"), query(request, "version")
    if not name or not version:
        raise invalid("Request must specify name and version.")
    found = await read_after_writes(
        ctx, ctx.projection.query, registry_reads.model_version, name, _version_number(version)
    )
    if found is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return await _download(ctx, request, await _source_root(ctx, found), query(request, "path"))


def _version_number(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise invalid(f"Invalid value '{text}' for parameter 'version': it must be a positive integer")
    return int(text)


async def _source_root(ctx, version: dict) -> str:
    """The artifact root a version's source names (sources are checked at creation)."""
    source = version["source"]
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "models" and version.get("model_id"):
        return await _model_root(ctx, version["model_id"])
    if parsed.scheme == "runs":
        run_root = await _run_root(ctx, version.get("run_id"))
        inner = parsed.path.lstrip("/").split("/", 1)[1:]
        return _joined_uri(run_root, inner[0] if inner else "")
    if parsed.scheme == STORE_SCHEME:
        return source
    raise MlflowError(
        f"The files of model version {version['name']} v{version['version']} are at '{source}', "
        "outside this server's artifact store",
        "INVALID_PARAMETER_VALUE",
    )


def _joined_uri(root_uri: str, path: str) -> str:
    return f"{root_uri.rstrip('/')}/{artifacts.safe_path(path)}" if path else root_uri


ROUTES = {
    ("GET", "artifacts/list"): list_run_artifacts,
    ("POST", "upload-artifact"): upload_run_artifact,
}
PATTERN_ROUTES = {
    ("GET", r"logged-models/(?P<model_id>[^/]+)/artifacts/directories"): list_model_artifacts,
    ("GET", r"logged-models/(?P<model_id>[^/]+)/artifacts/files"): get_model_artifact,
}
