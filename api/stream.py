"""``GET /api/ledger/stream``: the ledger as Server-Sent Events, as events become durable.

Each event is one SSE message: ``id`` its seq, ``event`` its type, ``data`` the full event as JSON
(as ``/api/ledger/events`` gives it; with auth, only the events its user may read). The stream
starts after ``?after=SEQ``, or after the ``Last-Event-ID`` header a reconnecting client sends,
so a client that resumes misses nothing and sees nothing twice. The filters of
``/api/ledger/events`` apply. A comment line every ``heartbeat`` seconds keeps idle connections
open through proxies.

Memory is bounded per stream: events are read from the ledger a batch at a time (``Follower``),
and the next batch only once the previous one was handed to the connection; a consumer that reads
slowly slows its own stream, which holds one batch.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from starlette.requests import Request
from starlette.responses import StreamingResponse
from trackledger.api.auth.guard import scope_of
from trackledger.api.errors import invalid
from trackledger.api.event_history import event_filters, event_json, visible
from trackledger.api.http import int_query
from trackledger.api.threads import blocking
from trackledger.api.validation import integer
from trackledger.ledger.follow import Follower

BATCH_EVENTS = 100
POLL_S = 0.2
HEARTBEAT_S = (15, 300)  # default and longest seconds between heartbeats


async def stream(ctx, request: Request):
    after = _start(request)
    filters = event_filters(request)
    default, longest = HEARTBEAT_S
    heartbeat = int_query(request, "heartbeat")
    heartbeat = default if heartbeat is None else heartbeat
    if not 1 <= heartbeat <= longest:
        raise invalid(f"'heartbeat' must be between 1 and {longest} seconds")
    follower = Follower(ctx.ledger, after)

    async def messages():
        yield f": trackledger events after seq {after}\n\n".encode()
        quiet_since = time.monotonic()
        while not ctx.stopping.is_set():
            events = []
            if ctx.ledger.durable_seq > follower.position:
                events = await blocking(follower.poll, BATCH_EVENTS)
            if events:
                scope = scope_of(ctx, request)  # per batch: a grant or revocation applies at once
                chunk = b"".join(_message(e) for e in events if _matches(e, filters) and visible(scope, e))
                if chunk:
                    yield chunk
                    quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since >= heartbeat:
                yield b": heartbeat\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(messages(), media_type="text/event-stream", headers=headers)


def _start(request: Request) -> int:
    resumed = request.headers.get("last-event-id")
    if resumed is not None:
        seq = integer(resumed.strip())
        if seq is None or seq < 0:
            raise invalid(f"Invalid Last-Event-ID {resumed!r}: expected the seq of an event")
        return seq
    after = int_query(request, "after") or 0
    if after < 0:
        raise invalid(f"'after' must be a seq, 0 or more, got {after}")
    return after


def _matches(event, filters: dict[str, str]) -> bool:
    return all(
        getattr(event, k, None) == v if k != "type" else event.__struct_config__.tag == v
        for k, v in filters.items()
    )


def _message(event) -> bytes:
    data = msgspec.json.encode(event_json(event)).decode()
    return f"id: {event.seq}\nevent: {event.__struct_config__.tag}\ndata: {data}\n\n".encode()
