"""Following a ledger: its durable events after a seq, in order, a batch at a time.

For readers that poll the tail often (the event stream, webhook delivery): the newest events are
read from the WAL incrementally, only the frames appended since the last call, instead of
rescanning whole WAL files; events already rolled into segments are read from the segments.
"""

from __future__ import annotations

from collections.abc import Iterator

from trackledger.ledger.events import Event
from trackledger.ledger.ledger import Ledger
from trackledger.ledger.wal import first_seq, read_frames, wal_files

__all__ = ["Follower"]


class Follower:
    """Not thread-safe: one follower per reader. ``position`` is the seq of the last event returned."""

    def __init__(self, ledger: Ledger, after: int = 0):
        self.ledger = ledger
        self.position = after
        self._path: str | None = None  # the WAL file being read, and the offset of its next frame
        self._offset = 0
        self._older: Iterator[Event] | None = None  # events from segments, while catching up

    def poll(self, max_events: int = 1000) -> list[Event]:
        """Up to about ``max_events`` durable events after ``position`` (fewer when there are fewer)."""
        durable = self.ledger.durable_seq
        if durable <= self.position:
            return []
        if self._older is None:
            events = self._from_wal(durable, max_events)
            if events is not None:
                return self._advance(events)
            self._older = self.ledger.read(self.position)
        events = []
        for event in self._older:
            events.append(event)
            if len(events) >= max_events:
                return self._advance(events)
        self._older = None
        return self._advance(events)

    def _advance(self, events: list[Event]) -> list[Event]:
        events = [e for e in events if e.seq > self.position]
        if events:
            self.position = events[-1].seq
        return events

    def _from_wal(self, durable: int, max_events: int) -> list[Event] | None:
        """Events from the WAL file holding ``position + 1``; None if no WAL file holds it any more."""
        for _attempt in range(3):
            files = [p for p in wal_files(self.ledger.wal_dir) if first_seq(p) <= self.position + 1]
            if not files:
                return None
            if files[-1] != self._path:
                self._path, self._offset = files[-1], 0
            try:
                events, self._offset = read_frames(self._path, self._offset, max_events, durable)
            except FileNotFoundError:  # rolled into a segment meanwhile
                self._path = None
                continue
            return events
        return None
