"""The ledger: append events durably (WAL + group commit), roll them into segments, read them back.

Threads: any number of appenders; ``_lock`` serialises WAL writes (seq order = file order). The
first appender to find no sync in flight becomes the leader and fdatasyncs for everyone who wrote
before it started (group commit); the others wait on ``_sync``. A background roller turns sealed WAL
files into segments, one at a time, in order (the chain needs that).

Rolling is crash-safe without being one atomic step: publish the segment (create-only), then delete
the WAL file. A crash in between leaves events in both places; on open, WAL events with
seq <= the last segment's last_seq are dropped, so none is ever duplicated.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
import pyarrow as pa
from trackledger.ledger import segments as seg
from trackledger.ledger.bulk import BulkWriter
from trackledger.ledger.events import BatchLogged, Event
from trackledger.ledger.schema import default_overrides, events_to_table
from trackledger.ledger.store import Store, fsync_dir, open_store
from trackledger.ledger.wal import HEADER, WalFile, encode_frame, iter_frames, scan_file, wal_files

__all__ = ["DEFAULT_ROLL_BYTES", "DEFAULT_ROLL_SECONDS", "ID_WINDOW", "Ledger", "StateDirInUse"]

log = logging.getLogger(__name__)

DEFAULT_ROLL_BYTES = 64 * 1024 * 1024  # a WAL file this big becomes a segment...
DEFAULT_ROLL_SECONDS = 30 * 60.0  # ...or one this old: at most ~48 segments a day of trickle logging
ROLL_CHUNK_ITEMS = 100_000  # events plus their list items per row group of a segment, at most
ID_WINDOW = 1_000_000  # event ids remembered for idempotency: the WAL plus the newest segments
_WRITER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StateDirInUse(RuntimeError):
    """Another process (a server, a rebuild) holds the state directory's lock."""


class Ledger:
    def __init__(
        self,
        store: str | os.PathLike | Store,
        state_dir: str | os.PathLike,
        *,
        writer: str | None = None,
        durability: str = "fsync",
        roll_bytes: int = DEFAULT_ROLL_BYTES,
        roll_seconds: float = DEFAULT_ROLL_SECONDS,
        storage_options: dict[str, Any] | None = None,
    ):
        if durability not in ("fsync", "os"):
            raise ValueError(f"durability must be 'fsync' or 'os', not {durability!r}")
        self.store = store if isinstance(store, Store) else open_store(store, storage_options)
        self.state_dir = os.path.abspath(state_dir)
        self.wal_dir = os.path.join(self.state_dir, "wal")
        os.makedirs(self.wal_dir, exist_ok=True)
        self.durability = durability
        self.roll_bytes = roll_bytes
        self.roll_seconds = roll_seconds
        self._lock_fd = _lock_state_dir(self.state_dir)
        self.writer = _writer_id(self.state_dir, writer)

        self._lock = threading.Lock()  # WAL writes, seq assignment, the sealed-file list
        self._sync = threading.Condition()  # group commit
        self._syncing = False
        self._roll_lock = threading.Lock()  # one roll at a time, in order
        self._encoder = msgspec.msgpack.Encoder()
        self._ids: set[str] = set()
        self._id_order: deque[str] = deque()
        self._info_cache: dict[str, seg.SegmentInfo] = {}
        self._newest_segment: seg.SegmentInfo | None = None  # published by this process
        self._sealed: list[str] = []
        self._closed = False
        self._bulk = False  # a BulkWriter is open: no appends through the WAL
        self.roll_error: BaseException | None = None  # last background roll failure, for health checks
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._recover()

        self._roller = threading.Thread(
            target=self._roll_loop, name=f"ledger-roller-{self.writer}", daemon=True
        )
        self._roller.start()

    # Recovery ------------------------------------------------------------------------

    def _recover(self) -> None:
        own = seg.list_segments(self.store, self.writer)
        last = self._info(own[-1]) if own else None
        self._segment_last_seq = last.last_seq if last else 0
        self._prev_digest = last.digest if last else ""
        self._prev_file_sha256 = seg.file_sha256(self.store.read_bytes(last.path)) if last else ""
        last_seq = self._segment_last_seq
        pending: list[Event] = []
        self._active: WalFile | None = None
        files = wal_files(self.wal_dir)
        for index, path in enumerate(files):
            scan = scan_file(path)
            fresh = [e for e in scan.events if e.seq > self._segment_last_seq]
            is_last = index == len(files) - 1
            if scan.torn and not is_last:
                # Only the newest file can be torn in fsync mode (older ones were synced when sealed);
                # in "os" mode later files were never promised durable: drop them, keep seqs contiguous.
                for later in files[index + 1 :]:
                    os.unlink(later)
                is_last = True
            if is_last and scan.header_ok and len(fresh) == len(scan.events):
                self._active = WalFile.reopen(scan)
                os.fsync(self._active.fd)
            elif fresh:
                if scan.torn:
                    os.truncate(path, scan.valid_bytes)
                self._sealed.append(path)
            else:
                os.unlink(path)  # empty, unreadable header, or wholly in segments already
            pending.extend(fresh)
            last_seq = max([last_seq, *(e.seq for e in fresh)])
            if is_last:
                break
        fsync_dir(self.wal_dir)
        self._last_seq = self._written_seq = self._durable_seq = last_seq
        if self._active is None:
            self._active = WalFile.create(self.wal_dir, last_seq + 1)
        self._active_since = time.monotonic() if self._active.size > HEADER.size else None
        self._seed_ids(own, pending)

    def _seed_ids(self, own_segments: list[str], pending: list[Event]) -> None:
        recent: list[list[str]] = []
        budget = ID_WINDOW - len(pending)
        for relpath in reversed(own_segments):
            if budget <= 0:
                break
            ids = seg.read_table(self.store, relpath, columns=["id"]).column("id").to_pylist()
            recent.append(ids[-budget:])
            budget -= len(ids)
        for ids in reversed(recent):
            self._remember(ids)
        self._remember(e.id for e in pending)

    def _remember(self, ids) -> None:
        for event_id in ids:
            self._ids.add(event_id)
            self._id_order.append(event_id)
        while len(self._id_order) > ID_WINDOW:
            self._ids.discard(self._id_order.popleft())

    # Appending -----------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        return self._durable_seq

    def knows(self, event_id: str) -> bool:
        """Whether an event with this id was appended (within the last ``ID_WINDOW`` ids)."""
        return event_id in self._ids

    def append(self, events: Sequence[Event]) -> list[Event]:
        """Append one request's events all-or-nothing; returns once they are durable.

        Stamps ``seq``, ``ts`` and ``writer``; events whose id was appended before (within
        ``ID_WINDOW``) are dropped. Returns the stamped events that were new.
        """
        stamped = self.stage(events)
        self.wait_durable(stamped[-1].seq if stamped else self._written_seq)
        return stamped

    def stage(self, events: Sequence[Event]) -> list[Event]:
        """Like ``append`` but returns after the WAL write, before the sync (see ``wait_durable``)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("ledger is closed")
            if self._bulk:
                raise RuntimeError("a bulk writer is open: append through it")
            batch_ids: set[str] = set()
            fresh = []
            for event in events:
                if event.id not in self._ids and event.id not in batch_ids:
                    batch_ids.add(event.id)
                    fresh.append(event)
            if not fresh:
                return []
            ts = time.time_ns() // 1_000_000
            first = self._last_seq + 1
            replace = msgspec.structs.replace
            stamped = [
                replace(e, seq=first + i, ts=ts, writer=self.writer, **default_overrides(e))
                for i, e in enumerate(fresh)
            ]
            # Field types are trusted, not re-validated (that would double the cost of a 1,000-metric
            # batch): events come from msgspec-decoded requests. A frame that passes its checksum but
            # does not decode stops recovery with WalCorrupt instead of being dropped.
            self._active.write(encode_frame(self._encoder.encode(stamped)))
            self._last_seq = self._written_seq = stamped[-1].seq
            self._remember(batch_ids)
            if self.durability == "os":
                self._durable_seq = self._written_seq
            if self._active_since is None:
                self._active_since = time.monotonic()
            if self._active.size >= self.roll_bytes:
                self._rotate_locked()
            return stamped

    def wait_durable(self, seq: int) -> None:
        """Block until every event up to ``seq`` is synced (one fdatasync serves many callers)."""
        if seq <= self._durable_seq:
            return
        with self._sync:
            while self._durable_seq < seq:
                if self._syncing:
                    self._sync.wait()
                    continue
                self._syncing = True
                target, fd = self._written_seq, self._active.fd
                self._sync.release()
                try:
                    os.fdatasync(fd)
                finally:
                    self._sync.acquire()
                    self._syncing = False
                    self._sync.notify_all()
                self._durable_seq = max(self._durable_seq, target)

    def _rotate_locked(self) -> None:
        """Seal the active WAL file (synced) and start a new one. Caller holds ``_lock``."""
        with self._sync:
            while self._syncing:
                self._sync.wait()
            self._syncing = True
        try:
            os.fsync(self._active.fd)
            self._durable_seq = self._written_seq
            fresh = WalFile.create(self.wal_dir, self._last_seq + 1)
        finally:
            with self._sync:
                self._syncing = False
                self._sync.notify_all()
        self._active.close()
        self._sealed.append(self._active.path)
        self._active = fresh
        self._active_since = None
        self._wake.set()

    # Bulk writing ------------------------------------------------------------------

    def bulk(self, **options) -> BulkWriter:
        """A writer of events straight into segments, for bulk loaders (see ``ledger.bulk``);
        ``options``: segment_items, segment_seconds."""
        return BulkWriter(self, **options)

    def _begin_bulk(self) -> int:
        """Empty the WAL into segments and take appends over; the last seq so far."""
        self.roll()
        with self._lock:
            if self._closed:
                raise RuntimeError("ledger is closed")
            if self._bulk:
                raise RuntimeError("a bulk writer is open already")
            self._bulk = True
            return self._last_seq

    def _publish_bulk(self, encoded: tuple[bytes, seg.SegmentInfo], ids: dict[str, None]) -> seg.SegmentInfo:
        with self._roll_lock:
            info = self._publish(encoded)
        with self._lock:
            self._last_seq = self._written_seq = self._durable_seq = info.last_seq
            self._remember(ids)
        return info

    def _end_bulk(self) -> None:
        with self._lock:
            self._bulk = False

    # Rolling -------------------------------------------------------------------------

    def roll(self) -> seg.SegmentInfo | None:
        """Turn everything in the WAL into segment(s) now; returns the newest one made, if any."""
        with self._lock:
            before = self._segment_last_seq
            if self._active.size > HEADER.size:
                self._rotate_locked()
        self._roll_sealed()
        # The background roller, woken by the rotation, may have rolled the file first.
        with self._lock:
            return self._newest_segment if self._segment_last_seq > before else None

    def _roll_sealed(self) -> None:
        with self._roll_lock:
            while True:
                with self._lock:
                    if not self._sealed:
                        return
                    path = self._sealed[0]
                chunks = _chunks(
                    e for frame in iter_frames(path) for e in frame if e.seq > self._segment_last_seq
                )
                encoded = seg.encode_segment(
                    self.store, self.writer, chunks, self._prev_digest, self._prev_file_sha256
                )
                if encoded:
                    self._publish(encoded)
                with self._lock:
                    self._sealed.pop(0)
                os.unlink(path)
                fsync_dir(self.wal_dir)

    def _publish(self, encoded: tuple[bytes, seg.SegmentInfo]) -> seg.SegmentInfo:
        """Store a segment (create-only) and make it the chain's newest. A segment already
        there with the same digest is this one, published before a crash."""
        data, info = encoded
        try:
            self.store.publish(info.path, data)
        except FileExistsError:
            if self._info(info.path).digest != info.digest:
                raise
            data = self.store.read_bytes(info.path)
        self._info_cache[info.path] = info
        with self._lock:
            self._segment_last_seq, self._prev_digest = info.last_seq, info.digest
            self._prev_file_sha256 = seg.file_sha256(data)
            self._newest_segment = info
        return info

    def _roll_loop(self) -> None:
        interval = max(0.05, min(self.roll_seconds / 4, 5.0))
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                since = self._active_since
                if since is not None and time.monotonic() - since >= self.roll_seconds:
                    with self._lock:
                        if self._active.size > HEADER.size and not self._closed:
                            self._rotate_locked()
                self._roll_sealed()
                self.roll_error = None
            except Exception as exc:  # the WAL keeps the events; try again next round
                self.roll_error = exc
                log.exception("rolling the WAL into a segment failed; will retry")

    # Reading -------------------------------------------------------------------------

    def read(self, after: int = 0) -> Iterator[Event]:
        """This writer's durable events with seq > ``after``, in order: segments, then the WAL."""
        position = after
        for _attempt in range(5):
            for relpath in seg.list_segments(self.store, self.writer):
                _writer, _first, last = seg.parse_relpath(relpath)
                if last > position:
                    for event in seg.read_events(self.store, relpath):
                        if event.seq > position:
                            yield event
                            position = event.seq
            tail = self._wal_events(position)
            if tail is not None and (not tail or tail[0].seq == position + 1):
                yield from tail
                return
            # A roll moved the events we need from the WAL into a segment meanwhile: list again.
        raise RuntimeError(f"events after seq {position} are neither in a segment nor in the WAL")

    def _wal_events(self, after: int) -> list[Event] | None:
        """Durable WAL events with seq > after, or None if a roll removed a file while reading."""
        with self._lock:
            paths = [*self._sealed, self._active.path]
            durable = self._durable_seq
        try:
            return [e for p in paths for e in scan_file(p).events if after < e.seq <= durable]
        except FileNotFoundError:
            return None

    def tail_table(self) -> pa.Table:
        """The durable events in the WAL that are not yet in a segment, as SEGMENT_SCHEMA rows."""
        while True:
            with self._lock:
                after = self._segment_last_seq
            events = self._wal_events(after)
            if events is not None:
                return events_to_table(events)

    def segments(self) -> list[seg.SegmentInfo]:
        """Every writer's segments in the store, in (writer, seq) order."""
        return [self._info(relpath) for relpath in seg.list_segments(self.store)]

    def _info(self, relpath: str) -> seg.SegmentInfo:
        info = self._info_cache.get(relpath)
        if info is None:  # segments are immutable, so their footer is read once
            info = self._info_cache[relpath] = seg.segment_info(self.store, relpath)
        return info

    def close(self) -> None:
        """Roll what the WAL holds into a segment, stop the roller, release the state directory."""
        if self._closed:
            return
        self._stop.set()
        self._wake.set()
        self._roller.join()
        try:
            self.roll()
        finally:
            with self._lock:
                self._closed = True
                self._active.close()
            os.close(self._lock_fd)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _lock_state_dir(state_dir: str) -> int:
    fd = os.open(os.path.join(state_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirInUse(f"another ledger process is using {state_dir}") from None
    return fd


def _writer_id(state_dir: str, requested: str | None) -> str:
    """The writer id stored in the state directory (created on first use)."""
    path = os.path.join(state_dir, "writer")
    stored = None
    if os.path.exists(path):
        with open(path) as f:
            stored = f.read().strip()
    if stored and requested and stored != requested:
        raise ValueError(f"{state_dir} belongs to writer {stored!r}, not {requested!r}")
    writer = stored or requested or f"w-{uuid.uuid4().hex[:12]}"
    if not _WRITER_NAME.match(writer):
        raise ValueError(f"writer id {writer!r}: use letters, digits, '_', '.', '-' (64 at most)")
    if not stored:
        with open(path, "w") as f:
            f.write(writer + "\n")
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(state_dir)
    return writer


def _chunks(events: Iterable[Event]) -> Iterator[list[Event]]:
    """``events`` in lists of about ROLL_CHUNK_ITEMS items (an event and its list items each
    count one), so rolling a WAL file holds one chunk of events in memory, not the whole file."""
    chunk: list[Event] = []
    items = 0
    for event in events:
        chunk.append(event)
        items += 1 + (
            len(event.metrics) + len(event.params) + len(event.tags) if isinstance(event, BatchLogged) else 0
        )
        if items >= ROLL_CHUNK_ITEMS:
            yield chunk
            chunk, items = [], 0
    if chunk:
        yield chunk
