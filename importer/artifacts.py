"""Artifact files: found where the source keeps them, streamed into the target's artifact store.

A source's artifact URIs are read with fsspec (local paths, ``file://``, ``s3://`` ...); its
``mlflow-artifacts:/`` URIs name files under the source server's ``--artifacts-destination``, which
``--artifacts-from`` gives (or, for a REST source, its artifact proxy serves). Files are copied in
chunks (bounded memory whatever their size), hashed on the way, and land under their final name
only when complete.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import uuid
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Protocol

import fsspec
from trackledger.importer.records import SourceError

CHUNK = 1 << 20
PROXY_SCHEME = "mlflow-artifacts:"


class CopiedFile(NamedTuple):
    path: str  # relative to the target's artifact root
    size: int
    sha256: str
    key: str  # its idempotency key: the ArtifactWritten event's id derives from it


class ArtifactFiles(Protocol):
    """Where a source's artifacts are read: the files under a URI, and one file's bytes."""

    def files(self, uri: str) -> Iterator[str]:
        """Paths (relative to ``uri``) of every file under it; none if it does not exist."""
        ...

    def open(self, uri: str, relpath: str) -> BinaryIO: ...


def proxy_path(uri: str) -> str | None:
    """The path under the artifact root that an ``mlflow-artifacts:`` URI names, else None."""
    if not uri.startswith(PROXY_SCHEME):
        return None
    rest = uri[len(PROXY_SCHEME) :]
    if rest.startswith("//"):  # mlflow-artifacts://host:port/path
        rest = rest[2:].partition("/")[2]
    return rest.strip("/")


class FsspecFiles:
    """Artifacts on a file system fsspec reads; ``root`` resolves ``mlflow-artifacts:`` URIs."""

    def __init__(self, root: str | None):
        self.root = root.rstrip("/") if root else None

    def _location(self, uri: str) -> str:
        path = proxy_path(uri)
        if path is None:
            return uri
        if self.root is None:
            raise SourceError(
                f"artifacts at {uri} are served by the source's artifact proxy: "
                "give --artifacts-from (its --artifacts-destination)"
            )
        return f"{self.root}/{path}" if path else self.root

    def files(self, uri: str) -> Iterator[str]:
        fs, base = fsspec.core.url_to_fs(self._location(uri))
        if not fs.exists(base):
            return
        base = base.rstrip("/")
        for full in sorted(fs.find(base)):
            yield posixpath.relpath(full, base)

    def open(self, uri: str, relpath: str) -> BinaryIO:
        fs, base = fsspec.core.url_to_fs(self._location(uri))
        return fs.open(f"{base.rstrip('/')}/{relpath}", "rb")


class ArtifactSink:
    """The target's artifact store (the server's ``--artifacts``), written like its proxy does."""

    def __init__(self, url: str, storage_options: dict | None = None):
        self.fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self.root = root.rstrip("/")
        self.local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )

    def write(self, path: str, stream: BinaryIO) -> tuple[int, str]:
        """Stream ``stream`` to ``path`` (under the root); returns its size and sha256."""
        target = f"{self.root}/{path}"
        digest = hashlib.sha256()
        size = 0
        if self.local:
            folder = os.path.dirname(target)
            os.makedirs(folder, exist_ok=True)
            temp = os.path.join(folder, f".tl-upload-{uuid.uuid4().hex}")
            try:
                with open(temp, "wb") as out:
                    while block := stream.read(CHUNK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, target)
            finally:
                if os.path.exists(temp):
                    os.unlink(temp)
        else:
            with self.fs.open(target, "wb") as out:
                while block := stream.read(CHUNK):
                    digest.update(block)
                    size += len(block)
                    out.write(block)
        return size, digest.hexdigest()
