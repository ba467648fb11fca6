"""The spool: a directory of append-only segment files, one JSON record a line.

Each process appends to segments of its own and holds an exclusive ``flock`` on each of them
while it lives, so several processes can share one spool directory: a segment whose lock can be
taken belongs to a process that has ended, and whoever takes the lock ships what is left of it.
Next to a segment, ``<segment>.cursor`` says how far it has been shipped and which range is in
flight (written before the request is sent, so whoever resends it sends the same range under the
same ``Idempotency-Key``). A segment is named ``<created_ns>-<random>~<generation>.spool``: names
sort by age, and a rewrite (dropping metric points past the disk budget) bumps the generation, so
the keys of the rewritten records are new ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

log = logging.getLogger("trackledger_client")
SUFFIX = ".spool"
TARGET_FILE = "target"
ARTIFACTS_DIR = "artifacts"
MAX_ROLL_BYTES = 64 << 20
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Cursor(msgspec.Struct):
    shipped: int = 0
    inflight: tuple[int, int] | None = None


@dataclass(eq=False)
class Segment:
    """One segment file, locked by this process (its writer, or the process that adopted it)."""

    path: Path
    fd: int
    size: int
    open_for_append: bool
    cursor: Cursor = field(default_factory=Cursor)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @property
    def cursor_path(self) -> Path:
        return self.path.with_suffix(".cursor")

    def save_cursor(self) -> None:
        temp = self.path.with_suffix(".cursor.tmp")
        with open(temp, "wb") as f:
            f.write(_encode(self.cursor))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.cursor_path)

    def read(self, start: int, max_bytes: int) -> list[tuple[int, int, list]]:
        """Complete records from ``start``: (offset, end, record). A torn last line is left out."""
        data = os.pread(self.fd, max_bytes, start)
        records = []
        pos = 0
        while (newline := data.find(b"\n", pos)) >= 0:
            records.append((start + pos, start + newline + 1, _decode(data[pos:newline])))
            pos = newline + 1
        return records

    def remove(self) -> None:
        # The segment first: a cursor without its segment is an orphan anyone may delete.
        self.path.unlink(missing_ok=True)
        self.cursor_path.unlink(missing_ok=True)
        os.close(self.fd)


def new_segment_path(directory: Path) -> Path:
    return directory / f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}~0{SUFFIX}"


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Spool:
    """This process's view of a spool directory: the segment it appends to, and every segment it
    has locked for shipping (its own rolled ones, and leftovers of processes that have ended)."""

    def __init__(self, directory: Path, target: str, budget_bytes: int) -> None:
        self.directory = directory
        self.budget_bytes = budget_bytes
        self.roll_bytes = max(1 << 16, min(MAX_ROLL_BYTES, budget_bytes // 8))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / ARTIFACTS_DIR).mkdir(exist_ok=True)
        target_file = directory / TARGET_FILE
        if not target_file.exists():
            target_file.write_text(target + "\n")
        self._lock = threading.Lock()
        self.segments: list[Segment] = []  # oldest first; the last is appended to
        self.appended = 0  # bytes this process appended, in total
        self.dirty = False
        self.dropped_points = 0
        self._open_new()

    # Writing (any thread) -----------------------------------------------------------------

    def append(self, record: list) -> None:
        line = _encode(record) + b"\n"
        with self._lock:
            current = self.segments[-1]
            os.write(current.fd, line)
            current.size += len(line)
            self.appended += len(line)
            self.dirty = True
            if current.size >= self.roll_bytes:
                current.open_for_append = False
                self._open_new()

    def _open_new(self) -> None:
        path = new_segment_path(self.directory)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.segments.append(Segment(path, fd, 0, True))

    def sync(self) -> None:
        """Group commit: one fsync for every record appended since the last one."""
        if not self.dirty:
            return
        with self._lock:
            self.dirty = False
            fd = self.segments[-1].fd
            rolled = [s.fd for s in self.segments[:-1] if s.open_for_append is False]
        for each in [*rolled, fd]:
            with contextlib.suppress(OSError):
                os.fsync(each)

    # Shipping (the shipper's thread) ---------------------------------------------------------

    def snapshot(self) -> list[Segment]:
        with self._lock:
            return list(self.segments)

    def is_current(self, segment: Segment) -> bool:
        with self._lock:
            return segment is self.segments[-1]

    def retire(self, segment: Segment) -> None:
        """A segment no longer appended to and fully shipped: delete it."""
        with self._lock:
            self.segments.remove(segment)
        segment.remove()

    def adopt_leftovers(self) -> int:
        """Lock and take over the segments of processes that have ended; returns how many."""
        mine = {s.path for s in self.snapshot()}
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path in mine:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            # Locked by a live process, or deleted by its shipper after we opened it.
            if not _lock(fd) or _inode(path) != os.fstat(fd).st_ino:
                os.close(fd)
                continue
            segment = Segment(path, fd, os.fstat(fd).st_size, False)
            if segment.cursor_path.exists():
                segment.cursor = msgspec.json.decode(segment.cursor_path.read_bytes(), type=Cursor)
            found.append(segment)
        for orphan in self.directory.glob("*.cursor"):
            if not orphan.with_suffix(SUFFIX).exists():
                orphan.unlink(missing_ok=True)
        if found:
            with self._lock:
                self.segments[:0] = found  # older than anything this process wrote
        return len(found)

    def unshipped_bytes(self) -> int:
        return sum(s.size - s.cursor.shipped for s in self.snapshot())

    def enforce_budget(self) -> int:
        """Past the disk budget, drop the oldest metric points: rewrite the oldest segments that
        are no longer appended to without their unshipped metric records. Returns how many points
        were dropped. Params, tags, run state and artifacts are kept whatever the budget."""
        dropped = 0
        for segment in self.snapshot():
            if self._used_bytes() <= self.budget_bytes:
                break
            if segment.open_for_append or segment.cursor.inflight is not None:
                continue
            dropped += self._rewrite_without_metrics(segment)
        if dropped:
            self.dropped_points += dropped
            log.warning(
                "trackledger: the spool %s is past its disk budget of %s bytes: dropped the %d "
                "oldest metric points not yet shipped (%d dropped so far)",
                self.directory,
                self.budget_bytes,
                dropped,
                self.dropped_points,
            )
        return dropped

    def _used_bytes(self) -> int:
        return sum(s.size for s in self.snapshot()) + _tree_size(self.directory / ARTIFACTS_DIR)

    def _rewrite_without_metrics(self, segment: Segment) -> int:
        kept: list[bytes] = []
        dropped = 0
        for _, _, record in segment.read(segment.cursor.shipped, segment.size):
            if record[0] == "m":
                dropped += 1
            else:
                kept.append(_encode(record) + b"\n")
        if not dropped:
            return 0  # nothing to gain; keep its name (and its records' keys)
        stem, _, generation = segment.name.rpartition("~")
        path = segment.path.with_name(f"{stem}~{int(generation) + 1}{SUFFIX}")
        temp = path.with_suffix(".tmp")
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # locked before it has a name anyone lists
        data = b"".join(kept)
        os.write(fd, data)
        os.fsync(fd)
        os.rename(temp, path)
        replacement = Segment(path, fd, len(data), False)
        with self._lock:
            self.segments[self.segments.index(segment)] = replacement
        segment.remove()
        return dropped

    def close(self) -> None:
        """Release every lock: what is left is picked up by the next process or a sync."""
        with self._lock:
            segments, self.segments = self.segments, []
        for segment in segments:
            if segment.size == segment.cursor.shipped:
                segment.remove()
            else:
                with contextlib.suppress(OSError):
                    os.fsync(segment.fd)
                os.close(segment.fd)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _tree_size(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(folder, name))
    return total
