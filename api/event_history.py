"""``GET /api/ledger/events``: the raw event history, for audit and replication."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from trackledger.api.auth.guard import scope_of
from trackledger.api.errors import invalid
from trackledger.api.http import int_query, json_response, query
from trackledger.api.threads import read_after_writes
from trackledger.ledger.events import SECRET_FIELDS

MAX_EVENTS_PAGE = 10_000
EVENT_FILTERS = ("run_id", "experiment_id", "model_id", "actor", "type")


def event_filters(request: Request) -> dict[str, str]:
    """The equality filters on events a request asks for (the stream takes them too)."""
    return {k: val for k in EVENT_FILTERS if (val := query(request, k))}


def visible(scope, event) -> bool:
    """Whether a reader with ``scope`` may see ``event``: a non-admin sees the events of the
    experiments they may read and the registry's of the models they may read (as the ``events``
    table's scope does; account events name neither: they are for admins)."""
    if scope is None:
        return True
    if event.experiment_id:
        return event.experiment_id in scope.experiments
    if hasattr(event, "registered_model_id"):  # a registry event; its model's key as in the projection
        return (event.registered_model_id or event.name) in scope.registered_models
    return False


def event_json(event) -> dict:
    """An event as JSON, its credential hashes (if any) shown as "REDACTED"."""
    item = msgspec.to_builtins(event)
    item["actor_verified"] = event.actor_verified  # explicit, though it is the default
    for name in SECRET_FIELDS.intersection(item):
        item[name] = "REDACTED"
    return item


async def events(ctx, request: Request):
    """``GET /api/ledger/events?after=SEQ&limit=N``: full events, in seq order, with a cursor.

    Optional equality filters: run_id, experiment_id, model_id, actor, type. Events come straight
    from the ledger (segments, then the WAL), so the page is what a replica needs.
    """
    after = int_query(request, "after") or 0
    if after < 0:
        raise invalid(f"'after' must be a seq, 0 or more, got {after}")
    limit = int_query(request, "limit")
    limit = 100 if limit is None else limit
    if limit < 1 or limit > MAX_EVENTS_PAGE:
        raise invalid(f"'limit' must be between 1 and {MAX_EVENTS_PAGE}")
    filters = event_filters(request)
    scope = scope_of(ctx, request)

    def read() -> tuple[list[dict], bool]:
        page: list[dict] = []
        for event in ctx.ledger.read(after):
            if not visible(scope, event):
                continue
            item = event_json(event)
            if all(item.get(k) == val for k, val in filters.items()):
                page.append(item)
                if len(page) == limit:
                    return page, True
        return page, False

    # Once the projection has applied them, acknowledged events are durable, hence readable from
    # the ledger.
    page, more = await read_after_writes(ctx, read)
    out: dict = {"events": page}
    if more:
        out["next_after"] = page[-1]["seq"]
    return json_response(out)
