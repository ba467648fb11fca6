"""The context shared by every route module (MLflow API, native API, web UI).

The web UI (``api.web``) receives a ``ServerContext`` in ``routes(ctx)``: everything it needs
to read (projection), write (write service) and serve files (artifact store) is here.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trackledger.api.settings import Settings, storage_options_for

log = logging.getLogger("trackledger")

if TYPE_CHECKING:
    from trackledger.api.artifacts import ArtifactStore
    from trackledger.api.auth.middleware import Auth
    from trackledger.api.webhooks.deliverer import Deliverer
    from trackledger.api.writes.service import WriteService
    from trackledger.ledger import Ledger
    from trackledger.projections import Projection


@dataclass
class ServerContext:
    """Created with the app; ``open()`` (in the app's lifespan) fills in the components."""

    settings: Settings
    ledger: Ledger | None = None
    projection: Projection | None = None
    artifacts: ArtifactStore | None = None
    writes: WriteService | None = None
    auth: Auth | None = None  # with --auth: accounts and the credential checker
    sql_slots: threading.BoundedSemaphore | None = None  # POST /api/sql queries that may run at once
    webhooks: Deliverer | None = None
    stopping: threading.Event = field(default_factory=threading.Event)  # set when shutdown begins

    def open(self) -> None:
        """Open the components; a no-op when open (the server command opens them before it serves)."""
        if self.ledger is not None:
            return
        from trackledger.api.artifacts import ArtifactStore
        from trackledger.api.writes.service import WriteService
        from trackledger.ledger import Ledger
        from trackledger.projections import Projection

        s = self.settings
        state = s.state_path
        state.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(s.store, state, durability=s.durability, storage_options=s.store_options)
        self.projection = Projection(self.ledger, state / "projections.duckdb")
        artifact_options = s.store_options if s.artifacts is None else storage_options_for(s.artifacts_url)
        self.artifacts = ArtifactStore(s.artifacts_url, artifact_options)
        if removed := self.artifacts.remove_interrupted_uploads():
            log.warning("removed %d temporary files of uploads interrupted by a crash", removed)
        self.writes = WriteService(self.ledger, self.projection)
        if s.auth:
            from trackledger.api.auth.service import open_auth

            self.auth = open_auth(self, state)
        self.sql_slots = threading.BoundedSemaphore(s.sql_max_concurrent)
        self.webhooks = _deliverer(s, self.ledger, self.projection, state)
        self.webhooks.refresh()

    def close(self) -> None:
        """Webhook delivery first, then the projection (it reads the ledger), then the ledger, which
        rolls its WAL into a segment. The ledger is closed even when the projection cannot catch up
        (its disk is full): what did not reach the projection is in the ledger, and the next start
        applies it."""
        if self.webhooks is not None:
            self.webhooks.close()
            self.webhooks = None
        try:
            if self.projection is not None:
                try:
                    self.projection.flush()
                finally:
                    self.projection.close()
        finally:
            if self.ledger is not None:
                self.ledger.close()

    def failures(self) -> list[str]:
        """What keeps the server from doing its work right now: empty when healthy."""
        from trackledger.projections.projection import failure_reason

        found = []
        if self.projection is not None and (reason := self.projection.failure):
            found.append(f"the projection cannot apply events: {reason}")
        if self.ledger is not None and (error := self.ledger.roll_error) is not None:
            found.append(f"rolling the write-ahead log into segments failed: {failure_reason(error)}")
        return found


def _deliverer(s: Settings, ledger, projection, state):
    from trackledger.api.sealing import Sealer
    from trackledger.api.webhooks.deliverer import Deliverer, DeliveryPolicy
    from trackledger.api.webhooks.history import DeliveryHistory
    from trackledger.api.webhooks.sender import Sender

    sender = Sender(
        allow_private=s.webhook_allow_private,
        connect_timeout_s=s.webhook_timeout_s,
        read_timeout_s=s.webhook_timeout_s,
    )
    policy = DeliveryPolicy(max_age_s=s.webhook_max_age_s, retry_max_s=s.webhook_retry_max_s)
    history = DeliveryHistory(state / "webhooks.sqlite")
    return Deliverer(ledger, projection, Sealer.for_server(state), history, sender, policy)
