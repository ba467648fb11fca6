"""Server settings and the context shared by every route module (MLflow API, native API, web UI).

The web UI (``api.web``) receives a ``ServerContext`` in ``routes(ctx)``: everything it needs
to read (projection), write (write service) and serve files (artifact store) is here.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackledger.api.artifacts import ArtifactStore
    from trackledger.api.tracking import WriteService
    from trackledger.ledger import Ledger
    from trackledger.projections import Projection

DEFAULT_STORE = "./trackledger-data"


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def storage_options_for(url: str) -> dict[str, Any] | None:
    """s3fs options from the environment: AWS_ENDPOINT_URL selects an S3-compatible server."""
    if not url.startswith("s3://"):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def default_state_dir(store: str) -> Path:
    """Local stores keep their state next to the data; remote ones under ./.trackledger-state/."""
    if not is_remote(store):
        return Path(store.removeprefix("file://")) / ".state"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", store.split("://", 1)[1]).strip("_")[:80]
    digest = hashlib.sha256(store.encode()).hexdigest()[:8]
    return Path(".trackledger-state") / f"{slug}-{digest}"


def default_artifacts(store: str) -> str:
    return store.rstrip("/") + "/artifacts"


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    artifacts: str | None = None
    state_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 5000
    durability: str = "fsync"
    sql_max_rows: int = 10_000
    sql_timeout_s: float = 5.0
    storage_options: dict[str, Any] | None = None

    @property
    def artifacts_url(self) -> str:
        return self.artifacts or default_artifacts(self.store)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else default_state_dir(self.store)

    @property
    def store_options(self) -> dict[str, Any] | None:
        return self.storage_options if self.storage_options is not None else storage_options_for(self.store)


@dataclass
class ServerContext:
    """Created with the app; ``open()`` (in the app's lifespan) fills in the components."""

    settings: Settings
    ledger: Ledger | None = None
    projection: Projection | None = None
    artifacts: ArtifactStore | None = None
    writes: WriteService | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def open(self) -> None:
        from trackledger.api.artifacts import ArtifactStore
        from trackledger.api.tracking import WriteService
        from trackledger.ledger import Ledger
        from trackledger.projections import Projection

        s = self.settings
        state = s.state_path
        state.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(s.store, state, durability=s.durability, storage_options=s.store_options)
        self.projection = Projection(self.ledger, state / "projections.duckdb")
        artifact_options = s.store_options if s.artifacts is None else storage_options_for(s.artifacts_url)
        self.artifacts = ArtifactStore(s.artifacts_url, artifact_options)
        self.writes = WriteService(self.ledger, self.projection)

    def close(self) -> None:
        """Projection first (it reads the ledger), then the ledger, which rolls its WAL into a segment."""
        if self.projection is not None:
            self.projection.flush()
            self.projection.close()
        if self.ledger is not None:
            self.ledger.close()
