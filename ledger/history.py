"""Reading a store's whole history offline (every writer's segments, plus a WAL if given)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from trackledger.ledger import segments as seg
from trackledger.ledger.events import Event
from trackledger.ledger.store import Store, open_store
from trackledger.ledger.wal import read_wal_dir

__all__ = ["UnreadableSegment", "all_events", "history"]


class UnreadableSegment(Exception):
    """A segment that does not decode (changed bytes, truncated): ``verify`` says more."""


def all_events(
    store: str | os.PathLike | Store,
    storage_options: dict[str, Any] | None = None,
    wal_dir: str | None = None,
) -> Iterator[Event]:
    """Every writer's events, writer by writer in seq order; then the WAL's events not in a segment."""
    store = store if isinstance(store, Store) else open_store(store, storage_options)
    last_seq: dict[str, int] = {}
    for relpath in seg.list_segments(store):
        try:
            events = seg.read_events(store, relpath)
        except Exception as exc:  # whatever a damaged file makes pyarrow or the decoder raise
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise UnreadableSegment(f"{relpath}: {reason}") from exc
        for event in events:
            last_seq[event.writer] = event.seq
            yield event
    if wal_dir:
        for event in read_wal_dir(wal_dir):
            if event.seq > last_seq.get(event.writer, 0):
                yield event


def history(
    store: str | os.PathLike | Store,
    *,
    run_id: str | None = None,
    experiment_id: str | None = None,
    wal_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[Event]:
    """Events oldest first (by server time, then writer and seq), optionally of one run or experiment.

    An experiment's history includes the events of its runs (found from their run_created events).
    """
    events = list(all_events(store, storage_options, wal_dir))
    if experiment_id is not None:
        runs = {e.run_id for e in events if e.experiment_id == experiment_id and e.run_id}
        events = [e for e in events if e.experiment_id == experiment_id or e.run_id in runs]
    if run_id is not None:
        events = [e for e in events if e.run_id == run_id]
    events.sort(key=lambda e: (e.ts, e.writer, e.seq))
    return events
