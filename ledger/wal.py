"""The write-ahead log: numbered files of checksummed msgpack frames in ``<state_dir>/wal/``.

File layout::

    header  b"TLWAL" | u8 format version | u16 event schema version        (8 bytes)
    frame*  u32 payload length | u32 CRC-32 of payload | payload           (little-endian)

One frame holds one append (a msgpack array of the request's events), so a request is all or
nothing: a frame cut short or failing its checksum was never acknowledged and is dropped on open.
A file is named after the first seq it may hold: ``<seq:020d>.wal``. Only the newest file is
appended to; older ones are sealed (fsynced) and wait to become a segment.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field

import msgspec
from trackledger.ledger.events import SCHEMA_VERSION, AnyEvent, Event
from trackledger.ledger.store import fsync_dir

__all__ = [
    "WalCorrupt",
    "WalFile",
    "WalScan",
    "encode_frame",
    "first_seq",
    "iter_frames",
    "read_frames",
    "read_wal_dir",
    "scan_file",
    "wal_files",
]

MAGIC = b"TLWAL"
FORMAT_VERSION = 1
HEADER = struct.Struct("<5sBH")
FRAME = struct.Struct("<II")
SUFFIX = ".wal"

_DECODER = msgspec.msgpack.Decoder(list[AnyEvent])


class WalCorrupt(Exception):
    """A frame whose checksum matches but whose content does not decode: not a torn write."""


def encode_frame(payload: bytes) -> bytes:
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class WalScan:
    """What a WAL file holds: its intact frames' events and where the intact part ends."""

    path: str
    events: list[Event] = field(default_factory=list)
    valid_bytes: int = 0  # header + intact frames; a torn tail starts here
    size: int = 0
    header_ok: bool = False

    @property
    def torn(self) -> bool:
        return self.valid_bytes < self.size


def scan_file(path: str) -> WalScan:
    """Read every intact frame of one WAL file, stopping at the first short or bad frame."""
    with open(path, "rb") as f:
        data = f.read()
    scan = WalScan(path, size=len(data))
    for events, end in _frames(data, path):
        scan.events.extend(events)
        scan.valid_bytes = end
    scan.header_ok = scan.valid_bytes > 0
    return scan


def iter_frames(path: str) -> Iterator[list[Event]]:
    """The events of each intact frame of a WAL file in turn: memory for one frame at a time,
    not the file's events all at once (a sealed file holds up to ``roll_bytes`` of them)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < HEADER.size:
            return
        with (
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data,
            closing(_frames(data, path)) as frames,
        ):
            for events, _end in frames:
                yield events


def _frames(data, path: str) -> Iterator[tuple[list[Event], int]]:
    """(events, end offset) of each intact frame after a valid header; nothing if the header is bad."""
    if len(data) < HEADER.size:
        return
    magic, version, _schema_version = HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION:
        return
    offset = HEADER.size
    yield [], offset
    view = memoryview(data)
    try:
        while offset + FRAME.size <= len(data):
            length, crc = FRAME.unpack_from(data, offset)
            start, end = offset + FRAME.size, offset + FRAME.size + length
            if end > len(data) or zlib.crc32(view[start:end]) != crc:
                return
            try:
                events = _DECODER.decode(view[start:end])
            except msgspec.DecodeError as exc:
                raise WalCorrupt(f"{path} at byte {offset}: checksum matches but {exc}") from exc
            yield events, end
            offset = end
    finally:
        view.release()


def read_frames(path: str, offset: int, max_events: int, until_seq: int) -> tuple[list[Event], int]:
    """The events of the intact frames from byte ``offset`` of a WAL file (a frame boundary, or 0
    for the start), until at least ``max_events`` are read, the intact part ends or a frame holds
    an event past ``until_seq``; and the offset after the last frame taken. A frame still being
    written (or not yet synced) is left for the next call."""
    events: list[Event] = []
    with open(path, "rb") as f:
        if offset == 0:
            header = f.read(HEADER.size)
            if len(header) < HEADER.size or HEADER.unpack(header)[:2] != (MAGIC, FORMAT_VERSION):
                return events, 0
            offset = HEADER.size
        f.seek(offset)
        while len(events) < max_events:
            head = f.read(FRAME.size)
            if len(head) < FRAME.size:
                break
            length, crc = FRAME.unpack(head)
            payload = f.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            try:
                frame = _DECODER.decode(payload)
            except msgspec.DecodeError as exc:
                raise WalCorrupt(f"{path} at byte {offset}: checksum matches but {exc}") from exc
            if frame and frame[-1].seq > until_seq:
                break
            events.extend(frame)
            offset += FRAME.size + length
    return events, offset


def first_seq(path: str) -> int:
    """The first seq a WAL file may hold, from its name."""
    return int(os.path.basename(path).removesuffix(SUFFIX))


def wal_files(wal_dir: str) -> list[str]:
    """The WAL files of a directory, oldest first."""
    if not os.path.isdir(wal_dir):
        return []
    names = sorted(n for n in os.listdir(wal_dir) if n.endswith(SUFFIX))
    return [os.path.join(wal_dir, n) for n in names]


def read_wal_dir(wal_dir: str) -> Iterator[Event]:
    """Every intact event in a WAL directory, without changing it (for offline tools)."""
    for path in wal_files(wal_dir):
        yield from scan_file(path).events


class WalFile:
    """One WAL file open for appending. Not thread-safe: the ledger serialises writes."""

    def __init__(self, path: str, fd: int, size: int):
        self.path = path
        self.fd = fd
        self.size = size

    @classmethod
    def create(cls, wal_dir: str, first_seq: int) -> WalFile:
        """A new, empty, durable WAL file (header written and synced, directory entry synced)."""
        path = os.path.join(wal_dir, f"{first_seq:020d}{SUFFIX}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.write(fd, HEADER.pack(MAGIC, FORMAT_VERSION, SCHEMA_VERSION))
        os.fsync(fd)
        fsync_dir(wal_dir)
        return cls(path, fd, HEADER.size)

    @classmethod
    def reopen(cls, scan: WalScan) -> WalFile:
        """Continue appending to a scanned file, first cutting off its torn tail (if any)."""
        fd = os.open(scan.path, os.O_WRONLY | os.O_APPEND)
        if scan.torn:
            os.ftruncate(fd, scan.valid_bytes)
            os.fsync(fd)
        return cls(scan.path, fd, scan.valid_bytes)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            os.ftruncate(self.fd, self.size)  # no half frame in front of the next append
            raise
        self.size += len(data)

    def close(self) -> None:
        os.close(self.fd)
