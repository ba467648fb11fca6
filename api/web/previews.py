"""Previews of artifact files on the run page: images, text, JSON, CSV and an MLmodel's signature.

``/previews/artifacts/<path>`` answers an HTML fragment (rendered by the autoescaping templates:
a file's content is always text, never markup) that the page shows beside the artifact tree;
``/previews/images/<path>`` the bytes of an image it shows. Both check the reader's permission as
the artifact proxy does (``authorize_artifact``: READ on the experiment the path is in) and read at
most a stated number of bytes, whatever the file's size.

An image is served with its own type for ``<img>`` (SVG too, never inlined in the page: in an
``<img>`` its scripts do not run), ``X-Content-Type-Options: nosniff``, ``Content-Disposition:
attachment`` (opened on its own, it is downloaded, not shown on this origin) and a sandboxing
Content-Security-Policy for a browser that shows it anyway.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import urllib.parse

import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from trackledger.api.artifacts import (
    TEXT_EXTENSIONS,
    ArtifactStore,
    attachment_disposition,
    check_utf8,
    safe_path,
)
from trackledger.api.auth.accounts import READ
from trackledger.api.auth.guard import authorize_artifact
from trackledger.api.context import ServerContext
from trackledger.api.errors import MlflowError, not_found
from trackledger.api.threads import blocking
from trackledger.api.web.templating import render

PREVIEW_PREFIX = "/previews/artifacts/"
IMAGE_PREFIX = "/previews/images/"
DOWNLOAD_PREFIX = "/api/2.0/mlflow-artifacts/artifacts/"
TEXT_MAX_BYTES = 256 * 1024  # text, CSV and MLmodel files: what is read of them at most
JSON_MAX_BYTES = 1024 * 1024  # JSON is pretty-printed when the whole file is at most this
IMAGE_MAX_BYTES = 10 * 1024 * 1024
CSV_MAX_ROWS = 500
CSV_MAX_COLUMNS = 50
IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}
# An image, were it opened on its own anyway: no script, no requests, no same-origin access.
IMAGE_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
LIMITS = {
    "text_kib": TEXT_MAX_BYTES // 1024,
    "json_mib": JSON_MAX_BYTES // (1024 * 1024),
    "image_mib": IMAGE_MAX_BYTES // (1024 * 1024),
    "csv_rows": CSV_MAX_ROWS,
    "csv_columns": CSV_MAX_COLUMNS,
}


def kind_of(name: str) -> str | None:
    """The preview a file gets from its name: image, mlmodel, json, csv, text; None for none."""
    extension = posixpath.splitext(name)[1].lstrip(".").lower()
    if name == "MLmodel":
        return "mlmodel"
    if extension in IMAGE_TYPES:
        return "image"
    if extension == "json":
        return "json"
    if extension in ("csv", "tsv"):
        return "csv"
    if extension in TEXT_EXTENSIONS or name.lower() in ("requirements.txt", "license", "readme"):
        return "text"
    return None


def preview_url(store_path: str) -> str:
    return PREVIEW_PREFIX + urllib.parse.quote(store_path)


def _read_start(store: ArtifactStore, path: str, limit: int) -> bytes:
    with store.fs.open(store.full(path), "rb") as handle:
        return handle.read(limit)


def _text(data: bytes, size: int) -> tuple[str, bool]:
    """The bytes as text (invalid UTF-8 replaced; a character cut at the limit dropped), and
    whether the file goes on past them."""
    cut = size > len(data)
    text = data.decode("utf-8", errors="replace")
    if cut and text.endswith("\ufffd"):
        text = text[:-1]
    return text, cut


def _csv_table(text: str, cut: bool, name: str) -> dict | None:
    """The header and rows of a CSV file's start, within the preview's bounds; None when it does not
    read as CSV."""
    if cut:  # the last line read may be half a row
        text = text[: text.rfind("\n") + 1] if "\n" in text else ""
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    rows, more_rows, more_columns = [], cut, False
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if len(rows) == CSV_MAX_ROWS + 1:  # the header and CSV_MAX_ROWS rows
                more_rows = True
                break
            more_columns = more_columns or len(row) > CSV_MAX_COLUMNS
            rows.append(row[:CSV_MAX_COLUMNS])
    except csv.Error:  # a field past the csv module's limit (128 KiB)
        return None
    return {
        "header": rows[0] if rows else [],
        "rows": rows[1:],
        "more_rows": more_rows,
        "more_columns": more_columns,
    }


def _spec_rows(encoded) -> list[dict]:
    """One row per column or tensor of a signature's ``inputs``/``outputs`` (a JSON string)."""
    specs = json.loads(encoded) if isinstance(encoded, str) else encoded or []
    rows = []
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict):
            continue
        tensor = spec.get("tensor-spec") or {}
        kind = tensor.get("dtype") if spec.get("type") == "tensor" else spec.get("type")
        shape = tensor.get("shape")
        rows.append(
            {
                "name": spec.get("name", ""),
                "type": str(kind or ""),
                "shape": "" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")",
                "required": "" if "required" not in spec else ("yes" if spec["required"] else "no"),
            }
        )
    return rows


def _mlmodel(text: str) -> dict:
    """The flavors and the signature tables of an MLmodel file; ``error`` when it cannot be read."""
    try:
        model = yaml.safe_load(text)
        if not isinstance(model, dict):
            raise ValueError("not a mapping")
        signature = model.get("signature") or {}
        tables = {part: _spec_rows(signature.get(part)) for part in ("inputs", "outputs", "params")}
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        return {"error": f"This MLmodel file could not be read: {type(exc).__name__}"}
    flavors = model.get("flavors")
    return {
        "error": "",
        "flavors": sorted(str(name) for name in flavors) if isinstance(flavors, dict) else [],
        "has_signature": bool(signature),
        "tables": {part: rows for part, rows in tables.items() if rows},
    }


def _preview(ctx: ServerContext, path: str, size: int) -> dict:
    """What the fragment shows for the file at ``path`` (blocking: reads the store)."""
    name = posixpath.basename(path)
    kind = kind_of(name)
    shown: dict = {"kind": kind, "too_large": False, "note": "", "cut": False}
    if kind == "image":
        shown["too_large"] = size > IMAGE_MAX_BYTES
        shown["image_url"] = IMAGE_PREFIX + urllib.parse.quote(path)
        return shown
    if kind is None:
        return shown
    if kind == "json" and size <= JSON_MAX_BYTES:
        text, _ = _text(_read_start(ctx.artifacts, path, JSON_MAX_BYTES), size)
        try:
            shown["text"] = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            return shown
        except (ValueError, RecursionError):
            shown["note"] = "Not valid JSON: shown as text."
    elif kind == "json":
        shown["note"] = (
            f"Larger than {LIMITS['json_mib']} MiB: the start is shown as text, not pretty-printed."
        )
    text, cut = _text(_read_start(ctx.artifacts, path, TEXT_MAX_BYTES), size)
    if kind == "csv":
        shown["table"] = _csv_table(text, cut, name)
        if shown["table"] is None:
            shown["note"] = "Not a table this preview can read: shown as text."
    elif kind == "mlmodel":
        shown["model"] = {"error": "This MLmodel file is too large to read."} if cut else _mlmodel(text)
    shown["text"], shown["cut"] = text, cut
    return shown


async def _checked(ctx: ServerContext, request: Request, path: str) -> tuple[str, dict]:
    check_utf8(request)
    path = safe_path(path)
    await authorize_artifact(ctx, request, path, READ)
    info = await blocking(ctx.artifacts.info, path)
    if info is None or info.get("type") == "directory":
        raise not_found(f"No such artifact: '{path}'")
    return path, info


def routes(ctx: ServerContext) -> list[BaseRoute]:
    async def preview(request: Request) -> Response:
        path, info = await _checked(ctx, request, request.path_params["path"])
        size = int(info.get("size") or 0)
        shown = await blocking(_preview, ctx, path, size)
        response = render(
            request,
            "_preview.html",
            name=posixpath.basename(path),
            size=size,
            download_url=DOWNLOAD_PREFIX + urllib.parse.quote(path),
            limits=LIMITS,
            **shown,
        )
        response.headers["x-content-type-options"] = "nosniff"
        return response

    async def image(request: Request) -> Response:
        path, info = await _checked(ctx, request, request.path_params["path"])
        name = posixpath.basename(path)
        media = IMAGE_TYPES.get(posixpath.splitext(name)[1].lstrip(".").lower())
        if media is None:
            raise MlflowError(f"'{name}' is not an image this page previews", "INVALID_PARAMETER_VALUE")
        if int(info.get("size") or 0) > IMAGE_MAX_BYTES:
            raise MlflowError(
                f"'{name}' is larger than the preview's limit of {LIMITS['image_mib']} MiB: download it",
                "RESOURCE_LIMIT_EXCEEDED",
            )
        data = await blocking(_read_start, ctx.artifacts, path, IMAGE_MAX_BYTES)
        headers = {
            "x-content-type-options": "nosniff",
            "content-disposition": attachment_disposition(name),
            "content-security-policy": IMAGE_POLICY,
            "cache-control": "private, no-cache",
        }
        return Response(data, media_type=media, headers=headers)

    return [
        Route(PREVIEW_PREFIX + "{path:path}", preview, methods=["GET"], name="web_artifact_preview"),
        Route(IMAGE_PREFIX + "{path:path}", image, methods=["GET"], name="web_artifact_image"),
    ]
