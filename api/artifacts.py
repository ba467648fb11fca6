"""The artifact proxy: files under ``/api/2.0/mlflow-artifacts/artifacts/<path>`` on fsspec.

Uploads and downloads stream in chunks (bounded memory for any file size). A local upload goes
to a hidden temporary name in the target folder and is renamed into place after fsync, so a
half-written file never shows under its final name; on object stores one streaming upload is
committed when it completes. Every stored file also becomes an ArtifactWritten event, every
deletion an ArtifactsDeleted event.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mimetypes
import os
import posixpath
import re
import urllib.parse
import uuid

import fsspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from trackledger.api import writes
from trackledger.api.auth.accounts import EDIT, READ
from trackledger.api.auth.guard import authorize_artifact
from trackledger.api.errors import MlflowError, invalid, not_found
from trackledger.api.http import json_response, origin_of, query
from trackledger.api.threads import blocking, read_after_writes
from trackledger.ledger.events import ArtifactFile

CHUNK = 1 << 20
TEMP_PREFIX = ".tl-upload-"
MAX_NAME_BYTES = 255  # of one path part: what local file systems take
# Text formats are served as text/plain, as MLflow serves them; of the rest only passive media
# keep their type (a browser never runs them), everything else is application/octet-stream: no
# artifact can run as a page or a script in the web page's origin.
TEXT_EXTENSIONS = frozenset(
    [
        *("txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml"),
        *("yaml", "yml", "xml", "json", "js", "mjs", "py", "py3", "csv", "tsv", "md", "rst"),
        *("html", "htm", "shtml", "xhtml", "xht", "svg", "mlmodel", "mlproject"),
    ]
)
PASSIVE_MEDIA = ("image/", "audio/", "video/", "application/pdf")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no file name needs them; no header can carry them


def safe_path(raw: str | None, allow_empty: bool = False) -> str:
    """A relative artifact path with no way out of the artifact root, else a 400.

    With ``allow_empty`` (listings), an empty path or ``.`` is the root."""
    path = raw or ""
    if allow_empty and path.strip("/") == ".":
        return ""
    for candidate in (path, urllib.parse.unquote(path)):
        parts = candidate.split("/")
        if (
            "\\" in candidate
            or _CONTROL.search(candidate)
            or candidate.startswith("/")
            or re.match(r"^[A-Za-z]:", candidate)
            or any(part in ("..", ".") for part in parts)
            or any(part.startswith(TEMP_PREFIX) for part in parts)
        ):
            raise invalid(f"Invalid artifact path: '{raw}'")
        if any(len(part.encode()) > MAX_NAME_BYTES for part in parts):
            raise invalid(f"Invalid artifact path: '{raw}': a name is longer than {MAX_NAME_BYTES} bytes")
    path = path.strip("/")
    if not path and not allow_empty:
        raise invalid("Invalid artifact path: ''")
    return path


def check_utf8(request: Request) -> None:
    """Refuse a path or query whose percent-escapes are not UTF-8 (``%c0%ae``): decoded with
    replacement characters, different raw names would become the same file."""
    try:
        urllib.parse.unquote_to_bytes(request.scope.get("raw_path") or b"").decode("utf-8")
        urllib.parse.parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), errors="strict")
    except UnicodeDecodeError:
        raise invalid("Invalid artifact path: it is not valid UTF-8") from None


class ArtifactStore:
    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self.local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )
        self.root = root.rstrip("/")
        if self.local:
            os.makedirs(self.root, exist_ok=True)

    def remove_interrupted_uploads(self) -> int:
        """Delete the temporary files of uploads a crash interrupted (local stores; object-store
        uploads leave nothing behind). Called at start, before any upload: how many were removed."""
        if not self.local:
            return 0
        removed = 0
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, name))
                        removed += 1
        return removed

    def full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    # Upload ---------------------------------------------------------------------------

    def open_upload(self, path: str):
        target = self.full(path)
        if self.local:
            folder = os.path.dirname(target)
            try:
                os.makedirs(folder, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise invalid(f"Artifact path '{path}' is under a file, not a directory") from None
            temp = os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
            return open(temp, "wb"), temp
        return self.fs.open(target, "wb", block_size=8 * CHUNK), None

    def commit_upload(self, handle, temp: str | None, path: str) -> None:
        if temp is None:
            handle.close()  # completes the object-store upload
            return
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        target = self.full(path)
        if os.path.isdir(target):
            os.unlink(temp)
            raise invalid(f"Artifact path '{path}' is a directory")
        os.replace(temp, target)
        fd = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def abort_upload(self, handle, temp: str | None) -> None:
        if temp is None:
            handle.discard() if hasattr(handle, "discard") else handle.close()
            return
        try:
            with contextlib.suppress(OSError):  # a full disk fails the close too; the file goes anyway
                handle.close()
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    # Read -----------------------------------------------------------------------------

    def info(self, path: str) -> dict | None:
        try:
            return self.fs.info(self.full(path))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listing(self, path: str) -> list[dict]:
        """MLflow's rules: names relative to ``path`` (the client prefixes them itself), sorted;
        a file or a missing path lists empty."""
        base = self.full(path)
        if self.local and not os.path.isdir(base):
            return []
        try:
            entries = self.fs.ls(base, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        files = []
        for entry in entries:
            name = posixpath.basename(entry["name"].rstrip("/"))
            if not name or name.startswith(TEMP_PREFIX) or entry["name"].rstrip("/") == base:
                continue
            if entry["type"] == "directory":
                files.append({"path": name, "is_dir": True})
            elif size := int(entry.get("size") or 0):
                files.append({"path": name, "is_dir": False, "file_size": size})
            else:  # MLflow leaves an empty file's size out
                files.append({"path": name, "is_dir": False})
        return sorted(files, key=lambda f: f["path"])

    def files_under(self, path: str) -> list[tuple[str, int]]:
        """(path, size) of the file at ``path`` or of every file below it, paths relative to the root."""
        target = self.full(path)
        try:
            found = self.fs.find(target, detail=True, withdirs=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        prefix = self.root + "/"
        files = []
        for name, entry in found.items():
            relative = name.removeprefix(prefix) if name != target else path
            if entry.get("type") != "directory" and not posixpath.basename(relative).startswith(TEMP_PREFIX):
                files.append((relative, int(entry.get("size") or 0)))
        return sorted(files)

    def sha256(self, path: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(self.full(path), "rb") as handle:
            while data := handle.read(CHUNK):
                digest.update(data)
        return digest.hexdigest()

    def delete(self, path: str) -> None:
        """Remove a file or a folder; a missing path is no error (as in MLflow)."""
        target = self.full(path)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)


async def _store_upload(store: ArtifactStore, request: Request, path: str) -> tuple[int, str]:
    """Stream the request body to the file at ``path``: its size and SHA-256; nothing is left
    behind when it fails."""
    handle, temp = await blocking(store.open_upload, path)
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray()
    try:
        async for chunk in request.stream():
            buffer += chunk
            if len(buffer) >= CHUNK:
                digest.update(buffer)
                size += len(buffer)
                await blocking(handle.write, bytes(buffer))
                buffer.clear()
        if buffer:
            digest.update(buffer)
            size += len(buffer)
            await blocking(handle.write, bytes(buffer))
        await blocking(store.commit_upload, handle, temp, path)
    except BaseException:
        await blocking(store.abort_upload, handle, temp)
        raise
    return size, digest.hexdigest()


def no_space(path: str) -> MlflowError:
    return MlflowError(f"No space left on the artifact store for '{path}'", "INSUFFICIENT_STORAGE")


async def upload(ctx, request: Request, path: str):
    check_utf8(request)
    if path.endswith("/"):
        raise invalid(f"Invalid artifact path: '{path}': it must include a file name")
    path = safe_path(path)
    await authorize_artifact(ctx, request, path, EDIT)
    store: ArtifactStore = ctx.artifacts
    try:
        size, digest = await _store_upload(store, request, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(path) from None
        raise
    await ctx.writes.commit_off_loop(origin_of(request), writes.artifacts.written, path, size, digest)
    return Response(b"", status_code=200)


async def download(ctx, request: Request, path: str):
    check_utf8(request)
    path = safe_path(path)
    await authorize_artifact(ctx, request, path, READ)
    store: ArtifactStore = ctx.artifacts
    info = await blocking(store.info, path)
    if info is None or info.get("type") == "directory":
        raise not_found(f"No such artifact: '{path}'")
    handle = await blocking(store.fs.open, store.full(path), "rb")

    async def chunks():
        try:
            while data := await blocking(handle.read, CHUNK):
                yield data
        finally:
            await blocking(handle.close)

    name = posixpath.basename(path)
    headers = {
        "content-length": str(info.get("size") or 0),
        "content-disposition": attachment_disposition(name),
        "x-content-type-options": "nosniff",
        # Set here, not as media_type: Starlette would add "; charset=utf-8" to text/plain, which
        # MLflow does not send (its tests compare the header whole).
        "content-type": media_type(name),
    }
    return StreamingResponse(chunks(), headers=headers)


def media_type(name: str) -> str:
    extension = (posixpath.splitext(name)[1].lstrip(".") or name).lower()  # MLmodel, mlproject
    guessed = mimetypes.guess_type(name.lower())[0] or ""
    if extension in TEXT_EXTENSIONS or guessed.startswith("text/"):
        return "text/plain"
    if guessed.startswith(PASSIVE_MEDIA) and "svg" not in guessed:
        return guessed
    return "application/octet-stream"


_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def attachment_disposition(name: str) -> str:
    """RFC 6266, as MLflow (werkzeug) writes it: a bare ``filename`` when the name is a token,
    else quoted printable ASCII (headers are Latin-1), and the exact name in ``filename*`` when
    that fallback differs from it."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    shown = fallback if _TOKEN.fullmatch(fallback) else f'"{fallback}"'
    exact = f"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}" if fallback != name else ""
    return f"attachment; filename={shown}{exact}"


async def list_artifacts(ctx, request: Request):
    check_utf8(request)
    path = safe_path(query(request, "path"), allow_empty=True)
    await authorize_artifact(ctx, request, path, READ)
    files = await blocking(ctx.artifacts.listing, path)
    return json_response({"files": files} if files else {})


async def delete(ctx, request: Request, path: str):
    """Delete a file or a folder; the ledger records it first (who, which files, their sizes and
    hashes): an ``ArtifactsDeleted`` event, then the files go. Nothing there: nothing recorded."""
    check_utf8(request)
    path = safe_path(path)
    await authorize_artifact(ctx, request, path, EDIT)
    store: ArtifactStore = ctx.artifacts
    files = await read_after_writes(ctx, _files_with_hashes, ctx, store, path)
    if files:
        await ctx.writes.commit_off_loop(origin_of(request), writes.artifacts.deleted, path, files)
    await blocking(store.delete, path)
    return json_response()


def _files_with_hashes(ctx, store: ArtifactStore, path: str) -> list[ArtifactFile]:
    """The files at or under ``path``; hashes as recorded when written, computed when unknown."""
    known = {
        (row_path, size): sha256
        for row_path, size, sha256 in ctx.projection.read(
            "SELECT path, size, sha256 FROM artifacts WHERE path = ? OR starts_with(path, ?)",
            [path, path + "/"],
        )
    }
    return [
        ArtifactFile(path=name, size=size, sha256=known.get((name, size)) or store.sha256(name))
        for name, size in store.files_under(path)
    ]
