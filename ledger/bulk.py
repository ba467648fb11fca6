"""Events written straight into segments, bypassing the WAL: for a bulk loader (an import) that
appends millions of metric points to a store it holds offline.

Through the WAL, a point costs a loader twice: encoded into a frame, then decoded and converted
to Arrow when its file rolls into a segment (0.7 us here, three times the Parquet encoding).
A bulk writer takes events whose metric points may come as Arrow arrays built from a source's
columns, stamps them, and writes them as row groups of a segment: a point never becomes a Python
object, also not for the digest (the canonical bytes of the events, what ``verify`` recomputes:
``points_msgpack`` writes them from the columns).

Events are durable once their segment is published: by ``publish``, by the ``add`` that makes the
open segment hold BULK_SEGMENT_ITEMS items or finds its oldest event BULK_SEGMENT_SECONDS old,
and by ``close``. A crash loses only what was never published (never reported durable); one
``add`` is never split between segments, so it stays all-or-nothing. While a bulk writer is open
the ledger takes no other appends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import msgspec
import pyarrow as pa
from trackledger.ledger import segments as seg
from trackledger.ledger.events import Event
from trackledger.ledger.points_msgpack import points_msgpack
from trackledger.ledger.schema import default_overrides, events_to_table

if TYPE_CHECKING:
    from trackledger.ledger.ledger import Ledger

__all__ = ["BULK_SEGMENT_ITEMS", "BULK_SEGMENT_SECONDS", "BulkWriter"]

BULK_SEGMENT_ITEMS = 1_000_000  # ~7 MB of metric points: a crash loses a second or so of work
BULK_SEGMENT_SECONDS = 60.0
ROW_GROUP_ITEMS = 100_000  # events plus their list items per row group, like a WAL roll's
_LISTS = ("metrics", "params", "tags")
_ENCODER = msgspec.msgpack.Encoder()


class BulkWriter:
    """Made by ``Ledger.bulk()``; use as a context manager (closing publishes)."""

    def __init__(
        self,
        ledger: Ledger,
        segment_items: int = BULK_SEGMENT_ITEMS,
        segment_seconds: float = BULK_SEGMENT_SECONDS,
    ):
        self._ledger = ledger
        self.segment_items = segment_items
        self.segment_seconds = segment_seconds
        self._next_seq = ledger._begin_bulk() + 1
        self._pending: list[Event] = []  # the next row group's events, stamped
        self._pending_points: dict[int, pa.Array] = {}  # their points given as Arrow, by position
        self._pending_items = 0
        self._segment: seg.SegmentEncoder | None = None
        self._segment_items = 0
        self._unpublished_since: float | None = None  # when the oldest unpublished event was added
        self._unpublished_ids: dict[str, None] = {}  # insertion-ordered, for the id window
        self._closed = False

    def add(self, events: Sequence[Event], points: Mapping[int, pa.Array] | None = None) -> int:
        """Stamp and buffer events; those whose id the ledger has are dropped. ``points``: for
        some of them (by position), their metric points as Arrow (see ``events_to_table``).
        Returns how many were new."""
        points = points or {}
        fresh = self._fresh(range(len(events)), [e.id for e in events])
        if not fresh:
            return 0
        stamp = self._stamp(len(fresh))
        replace = msgspec.structs.replace
        for seq, index in zip(stamp.seqs, fresh, strict=True):
            event = events[index]
            row = len(self._pending)
            self._pending.append(
                replace(event, seq=seq, ts=stamp.ts, writer=stamp.writer, **default_overrides(event))
            )
            self._pending_items += 1 + _list_items(event)
            if index in points:
                self._pending_points[row] = points[index]
                self._pending_items += len(points[index])
        if self._unpublished_since is None:
            self._unpublished_since = time.monotonic()
        old = time.monotonic() - self._unpublished_since >= self.segment_seconds
        if self._pending_items >= ROW_GROUP_ITEMS or old:
            self._write_row_group()
        if self._segment_items >= self.segment_items or old:
            self.publish()
        return len(fresh)

    def publish(self) -> seg.SegmentInfo | None:
        """Make everything added so far durable (a segment in the store); the segment, if any."""
        self._write_row_group()
        if self._segment is None:
            return None
        encoded, self._segment = self._segment.finish(), None
        self._segment_items, self._unpublished_since = 0, None
        info = self._ledger._publish_bulk(encoded, self._unpublished_ids) if encoded else None
        self._unpublished_ids = {}
        return info

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.publish()
            finally:
                self._ledger._end_bulk()

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Writing ---------------------------------------------------------------------------

    def _fresh(self, items: Sequence, ids: list[str]) -> list:
        """The items whose id is new to the ledger and to this writer (first of equal ids)."""
        known, seen = self._ledger.knows, self._unpublished_ids
        fresh = []
        for item, event_id in zip(items, ids, strict=True):
            if event_id not in seen and not known(event_id):
                seen[event_id] = None
                fresh.append(item)
        return fresh

    def _stamp(self, count: int) -> _Stamp:
        if self._closed:
            raise RuntimeError("the bulk writer is closed")
        first = self._next_seq
        self._next_seq += count
        return _Stamp(range(first, first + count), time.time_ns() // 1_000_000, self._ledger.writer)

    def _write_row_group(self) -> None:
        if not self._pending:
            return
        events, points = self._pending, self._pending_points
        table = events_to_table(events, points)
        # Event by event, not in one call: a long call holding the GIL stalls the loader's other
        # threads (one relaying its source's points) for as long as it lasts. The points are
        # spliced in as their encoding, where the event's own (empty) list would be.
        canonical = (
            _ENCODER.encode(
                msgspec.structs.replace(event, metrics=msgspec.Raw(points_msgpack(points[row])))
                if row in points and len(points[row])
                else event
            )
            for row, event in enumerate(events)
        )
        if self._segment is None:
            ledger = self._ledger
            self._segment = seg.SegmentEncoder(
                ledger.store, ledger.writer, ledger._prev_digest, ledger._prev_file_sha256
            )
        self._segment.add(table, canonical)
        self._segment_items += self._pending_items
        self._pending, self._pending_points, self._pending_items = [], {}, 0


class _Stamp(NamedTuple):
    seqs: range
    ts: int
    writer: str


def _list_items(event: Event) -> int:
    return sum(len(getattr(event, name, ())) for name in _LISTS)
