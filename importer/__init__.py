"""``trackledger import``: an MLflow history (SQL store file, REST server) brought into the ledger.

Layers: the importer knows MLflow's schemas and makes ledger events (``events``); it reads sources
(``sqlite_source``, ``rest_source``, ``filestore_source``), writes to a store offline or to a running server
(``target``), and runs the phases (``driver``). It imports the ledger and the projections, never
the HTTP server.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nothing heavy at import: the reading process of SQLite points is in this package
    from trackledger.importer.artifacts import ArtifactFiles
    from trackledger.importer.records import Source


def open_source(url: str, artifacts_from: str | None) -> tuple[Source, ArtifactFiles]:
    """The source named by ``--from`` and where its artifact files are read."""
    from trackledger.importer.artifacts import FsspecFiles
    from trackledger.importer.records import SourceError

    if url.startswith("sqlite:///"):
        from trackledger.importer.sqlite_source import SqliteSource

        return SqliteSource(url), FsspecFiles(artifacts_from)
    if url.startswith(("http://", "https://")):
        from trackledger.importer.rest_source import ProxyFiles, RestSource

        source = RestSource(url)
        files = FsspecFiles(artifacts_from)
        return source, files if artifacts_from else ProxyFiles(source, files)
    if os.path.isdir(url.removeprefix("file://")):
        from trackledger.importer.filestore_source import FileStoreSource

        return FileStoreSource(url), FsspecFiles(artifacts_from)
    raise SourceError(
        f"--from {url}: give sqlite:///path/to/mlflow.db, http(s)://host:port or an mlruns directory"
    )


__all__ = ["open_source"]
