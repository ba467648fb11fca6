"""What every event of a request carries besides its own fields: its id, who it claims to be
from, and the transport's facts (the ledger adds ``seq``, ``ts`` and ``writer`` when staging)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trackledger.ledger.events import keyed_entity_id, keyed_event_id, new_event_id

if TYPE_CHECKING:
    from trackledger.api.writes.write_index import WriteIndex


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from. ``actor`` is the verified user when ``actor_verified`` (auth on),
    else a claim (e.g. a Basic-auth user name)."""

    actor: str | None = None
    actor_verified: bool = False
    remote_addr: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None

    def derived_id(self, purpose: str) -> str | None:
        """A stable id for an entity created by this request, so a retried create is the same."""
        if not self.idempotency_key:
            return None
        return keyed_entity_id(self.idempotency_key, purpose)

    def event_id(self, i: int) -> str | None:
        """The id of the request's i-th event when it carries an Idempotency-Key: a retry's events
        have the ids of the first attempt's, so the ledger appends them once."""
        if not self.idempotency_key:
            return None
        return keyed_event_id(self.idempotency_key, i)


class Envelope:
    """``envelope(i, **keys)``: the common fields of a request's i-th event, with its entity keys.

    Without a claimed actor, an event is attributed to the user of the run it concerns (for a
    logged model's events, the run that logged it), else to ``claimed_actor`` (the user a run
    creation names), else to "unknown".
    """

    __slots__ = ("_index", "_origin")

    def __init__(self, origin: Origin, index: WriteIndex) -> None:
        self._origin = origin
        self._index = index

    def __call__(self, i: int, claimed_actor: str | None = None, **keys) -> dict:
        origin = self._origin
        run_id = keys.get("run_id") or self._index.source_run(keys.get("model_id"))
        return {
            "id": origin.event_id(i) or new_event_id(),
            "actor": origin.actor or claimed_actor or self._index.run_user(run_id),
            "actor_verified": origin.actor_verified,
            "remote_addr": origin.remote_addr,
            "user_agent": origin.user_agent,
            **keys,
        }
