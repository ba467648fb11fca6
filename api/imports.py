"""Native endpoints of ``trackledger import --server``: append already-formed imported events (their
ids kept, so a rerun appends nothing twice) and say which of some event ids the ledger holds.

The importer forms the events (it knows MLflow's schemas); the server only checks that they are
events, that they say they are imported, and that none claims a verified actor, then appends them
through the write service like any write (write index, projection, durability). Bodies are msgpack:
JSON has no NaN, and imported metric histories do.

With auth, only an admin may import: imported events may be of any type, for any experiment, and
name other users. The admin who sends them is their verified actor; the user the source names for
each (a run's user, a version's user) stays, unverified, as ``claimed_actor``.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from trackledger.api.auth.guard import require_admin
from trackledger.api.errors import invalid
from trackledger.api.http import json_response, origin_of
from trackledger.api.threads import read_after_writes
from trackledger.ledger.events import AnyEvent

MAX_EVENTS = 10_000  # per request
MAX_IDS = 10_000
MSGPACK = "application/msgpack"


class ImportBatch(msgspec.Struct, frozen=True):
    events: list[AnyEvent]


class KnownQuery(msgspec.Struct, frozen=True):
    ids: list[str]


_batch = msgspec.msgpack.Decoder(ImportBatch)


async def append_events(ctx, request: Request):
    """``POST /api/ledger/import``: ``{"events": [...]}`` (msgpack) -> ``{"appended": N}``. With
    auth, for admins only: imported events may be of any type."""
    require_admin(ctx, request)
    if request.headers.get("content-type", "").split(";")[0].strip() != MSGPACK:
        raise invalid(f"the body of /api/ledger/import is {MSGPACK}")
    try:
        batch = _batch.decode(await request.body())
    except msgspec.DecodeError as exc:
        raise invalid(f"not a batch of ledger events: {exc}") from None
    if len(batch.events) > MAX_EVENTS:
        raise invalid(f"at most {MAX_EVENTS} events per request, got {len(batch.events)}")
    for event in batch.events:
        if not event.imported_from:
            raise invalid(f"event {event.id}: only imported events (with imported_from) are taken here")
        if event.actor_verified or event.claimed_actor is not None:
            raise invalid(f"event {event.id}: an imported event cannot claim a verified actor")
    origin = origin_of(request)
    transport = {"remote_addr": origin.remote_addr, "user_agent": origin.user_agent}
    if origin.actor_verified:
        events = [
            msgspec.structs.replace(
                e, **transport, actor=origin.actor, actor_verified=True, claimed_actor=e.actor or None
            )
            for e in batch.events
        ]
    else:
        events = [msgspec.structs.replace(e, **transport) for e in batch.events]
    appended = await ctx.writes.commit_off_loop(origin, _as_formed, events) if events else []
    return json_response({"appended": len(appended)})


def _as_formed(_index, _envelope, events: list) -> list:
    """The decision of an import: its events as the importer formed them (ids included)."""
    return events


async def known_events(ctx, request: Request):
    """``POST /api/ledger/import/known``: ``{"ids": [...]}`` -> ``{"known": {id: experiment_id}}``
    (admins only, with auth)."""
    require_admin(ctx, request)
    try:
        query = msgspec.json.decode(await request.body(), type=KnownQuery)
    except msgspec.DecodeError as exc:
        raise invalid(f'expected {{"ids": [...]}}: {exc}') from None
    if len(query.ids) > MAX_IDS:
        raise invalid(f"at most {MAX_IDS} ids per request, got {len(query.ids)}")
    if not query.ids:
        return json_response({"known": {}})
    marks = ",".join("?" * len(query.ids))
    rows = await read_after_writes(
        ctx, ctx.projection.read, f"SELECT id, experiment_id FROM events WHERE id IN ({marks})", query.ids
    )
    return json_response({"known": dict(rows)})
