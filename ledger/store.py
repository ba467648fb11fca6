"""The storage seam: one object per store URL, over an fsspec filesystem.

Supported URLs: a local path or ``file://``, ``memory://``, ``s3://bucket/prefix`` (s3fs, which takes
the usual AWS environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``...).

The one write operation is ``publish``: create a file whole, or fail with ``FileExistsError``.
No reader ever sees a partial file and nothing is ever overwritten.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

__all__ = ["Store", "open_store"]

# memory:// is one process-wide namespace, so its create-only check needs a process-wide lock.
_MEMORY_PUBLISH_LOCK = threading.Lock()


class Store:
    """A ledger store: ``fs`` (fsspec filesystem) and ``root`` (the store's path inside it)."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, protocol: str):
        self.fs = fs
        self.root = root.rstrip("/")  # "" is the top of a bucket-less filesystem
        self.protocol = protocol

    def __repr__(self) -> str:
        return f"Store({self.url('')!r})"

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def path(self, relpath: str) -> str:
        """The path of ``relpath`` inside ``fs``."""
        return f"{self.root}/{relpath}" if relpath else self.root or "/"

    def url(self, relpath: str) -> str:
        """A URL for ``relpath`` that DuckDB can read (a plain path when local).

        For memory:// and s3:// DuckDB needs ``duckdb.register_filesystem(store.fs)`` first.
        """
        path = self.path(relpath)
        if self.is_local:
            return path
        if self.protocol == "memory":
            return f"memory://{path}"
        return f"{self.protocol}://{path}"

    def read_bytes(self, relpath: str) -> bytes:
        return self.fs.cat_file(self.path(relpath))

    def open(self, relpath: str, mode: str = "rb"):
        return self.fs.open(self.path(relpath), mode)

    def exists(self, relpath: str) -> bool:
        return self.fs.exists(self.path(relpath))

    def find(self, relpath: str, suffix: str = "") -> list[str]:
        """Relative paths of every file under ``relpath`` ending in ``suffix``, sorted."""
        base = self.path(relpath)
        if not self.is_local:
            self.fs.invalidate_cache(base)
        if not self.fs.exists(base):
            return []
        prefix = self.root.strip("/") + "/" if self.root.strip("/") else ""
        found = []
        for full in self.fs.find(base):
            full = full.lstrip("/")
            if full.endswith(suffix) and full.startswith(prefix):
                found.append(full[len(prefix) :])
        return sorted(found)

    def publish(self, relpath: str, data: bytes) -> None:
        """Create ``relpath`` holding ``data``, atomically; ``FileExistsError`` if it exists."""
        path = self.path(relpath)
        if self.is_local:
            _publish_local(path, data)
        elif self.protocol == "memory":
            with _MEMORY_PUBLISH_LOCK:
                if self.fs.exists(path):
                    raise FileExistsError(path)
                self.fs.pipe_file(path, data)
        else:
            # s3fs sends If-None-Match: * and raises FileExistsError when the key exists.
            self.fs.pipe_file(path, data, mode="create")
            self.fs.invalidate_cache(path.rsplit("/", 1)[0])


def _publish_local(path: str, data: bytes) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)  # fails if the name exists: never an overwrite
    finally:
        os.unlink(temp)
    fsync_dir(folder)


def fsync_dir(folder: str) -> None:
    """Make a directory entry change (create, link, unlink) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(url: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> Store:
    """A ``Store`` for a local path, ``file://``, ``memory://`` or ``s3://`` URL."""
    url = os.fspath(url)
    options = dict(storage_options or {})
    if "://" not in url:
        return Store(LocalFileSystem(), os.path.abspath(url), "file")
    protocol, _, rest = url.partition("://")
    if protocol == "file":
        return Store(LocalFileSystem(), os.path.abspath(rest or "/"), "file")
    if protocol == "memory":
        return Store(MemoryFileSystem(), "/" + rest.strip("/") if rest.strip("/") else "", "memory")
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and "endpoint_url" not in options.get("client_kwargs", {}):
            options["client_kwargs"] = {**options.get("client_kwargs", {}), "endpoint_url": endpoint}
        fs = fsspec.filesystem("s3", **options)
        return Store(fs, rest.strip("/"), "s3")
    fs = fsspec.filesystem(protocol, **options)
    return Store(fs, fs._strip_protocol(url), protocol)
