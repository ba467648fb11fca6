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
from trackledger.api import artifacts, validation
from trackledger.api.auth.accounts import EDIT, READ
from trackledger.api.auth.guard import authorize_artifact, authorize_registered_model
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


def _relative(path: str | None) -> str:
    """A path below an owner's root, checked before anything is looked up (MLflow's wording)."""
    try:
        return artifacts.safe_path(path or "", allow_empty=True)
    except MlflowError:
        raise invalid("Invalid path") from None


def _joined(root: str, relative: str) -> str:
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


async def _listing(ctx, request: Request, root_uri: str, relative: str) -> dict:
    folder = _joined(store_folder(root_uri), relative)
    await authorize_artifact(ctx, request, folder, READ)  # the experiment the files are in
    files = await blocking(ctx.artifacts.listing, folder)
    for entry in files:  # the tracking API names files from the owner's root
        entry["path"] = posixpath.join(relative, entry["path"]) if relative else entry["path"]
    return {"root_uri": root_uri, "files": files} if files else {"root_uri": root_uri}


async def list_run_artifacts(ctx, request: Request):
    """MLflow's ListArtifacts of the tracking API: one page holds every entry."""
    artifacts.check_utf8(request)
    relative = _relative(query(request, "path"))
    root = await _run_root(ctx, query(request, "run_id") or query(request, "run_uuid"))
    return json_response(await _listing(ctx, request, root, relative))


async def get_run_artifact(request: Request):
    ctx = request.app.state.ctx
    relative = _file_path(request, "path")
    root = await _run_root(ctx, query(request, "run_id") or query(request, "run_uuid"))
    return await _download(ctx, request, root, relative)


def _file_path(request: Request, name: str) -> str:
    artifacts.check_utf8(request)
    relative = _relative(query(request, name))
    if not relative:
        raise invalid("Request must specify path.")
    return relative


async def _download(ctx, request: Request, root_uri: str, relative: str):
    path = _joined(store_folder(root_uri), relative)
    await authorize_artifact(ctx, request, path, READ)  # the experiment the file is in
    return await artifacts.download(ctx, request, path)


async def upload_run_artifact(ctx, request: Request):
    """The web UI's upload (MLflow's ``upload-artifact``): the body is the file."""
    root = await _run_root(ctx, query(request, "run_uuid") or query(request, "run_id"))
    if not query(request, "path"):
        raise invalid("Request must specify path.")
    relative = _relative(query(request, "path"))
    if not int(request.headers.get("content-length") or 0) and "chunked" not in request.headers.get(
        "transfer-encoding", ""
    ):
        raise invalid("Request must specify data.")
    path = _joined(store_folder(root), relative)
    await authorize_artifact(ctx, request, path, EDIT)
    return await artifacts.upload(ctx, request, path)


async def list_model_artifacts(ctx, request: Request, model_id: str):
    relative = _relative(query(request, "artifact_directory_path"))
    return json_response(await _listing(ctx, request, await _model_root(ctx, model_id), relative))


async def get_model_artifact(ctx, request: Request, model_id: str):
    relative = _file_path(request, "artifact_file_path")
    return await _download(ctx, request, await _model_root(ctx, model_id), relative)


async def get_model_version_artifact(request: Request):
    """A file of a model version: below the run or logged model its (validated) source names."""
    ctx = request.app.state.ctx
    relative = _file_path(request, "path")
    name, version = query(request, "name"), query(request, "version")
    if not name or not version:
        raise invalid("Request must specify name and version.")
    authorize_registered_model(ctx, request, name, READ)
    found = await read_after_writes(
        ctx, ctx.projection.query, registry_reads.model_version, name, validation.model_version(version)
    )
    if found is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return await _download(ctx, request, await _source_root(ctx, found), relative)


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
