"""Immutable Parquet segments: ``<store>/segments/<writer>/<first_seq:020d>-<last_seq:020d>.parquet``.

Each segment holds one writer's events ``first_seq..last_seq`` (contiguous) in SEGMENT_SCHEMA,
zstd-compressed, and carries Parquet key-value metadata: writer, first_seq, last_seq,
schema_version, digest, prev_digest, prev_file_sha256.

``digest = sha256(prev_digest || prev_file_sha256 || msgpack(event_1) || ... || msgpack(event_n))`` in
hex (the two hashes as ASCII hex); ``prev_digest`` is the digest of the same writer's previous
segment and ``prev_file_sha256`` the sha256 of that segment's file ("" for a writer's first). So the
segments of a writer form a hash chain: changing, removing, reordering or inserting a segment breaks
it from that point on. The file hash also covers bytes that are not events (statistics, page
headers), for every segment but a writer's newest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from trackledger.ledger.events import SCHEMA_VERSION, Event
from trackledger.ledger.schema import SEGMENT_SCHEMA, canonical_bytes, events_to_table, table_to_events
from trackledger.ledger.store import Store

__all__ = [
    "SEGMENTS_DIR",
    "SegmentEncoder",
    "SegmentInfo",
    "chain_digest",
    "chain_hash",
    "list_segments",
    "segment_relpath",
]

SEGMENTS_DIR = "segments"
_NAME = re.compile(r"^(?P<first>\d{20})-(?P<last>\d{20})\.parquet$")
METADATA_KEYS = (
    "writer",
    "first_seq",
    "last_seq",
    "schema_version",
    "digest",
    "prev_digest",
    "prev_file_sha256",
)


class SegmentInfo(msgspec.Struct, frozen=True):
    path: str  # relative to the store root
    url: str  # what DuckDB / pyarrow can open
    writer: str
    first_seq: int
    last_seq: int
    count: int
    digest: str
    prev_digest: str


def segment_relpath(writer: str, first_seq: int, last_seq: int) -> str:
    return f"{SEGMENTS_DIR}/{writer}/{first_seq:020d}-{last_seq:020d}.parquet"


def parse_relpath(relpath: str) -> tuple[str, int, int] | None:
    """(writer, first_seq, last_seq) from a segment's relative path, None if not one."""
    parts = relpath.split("/")
    match = _NAME.match(parts[-1]) if len(parts) == 3 and parts[0] == SEGMENTS_DIR else None
    if not match:
        return None
    return parts[1], int(match["first"]), int(match["last"])


def chain_hash(prev_digest: str, prev_file_sha256: str):
    """The digest's hash before any event: feed it ``canonical_bytes`` of the events in order."""
    # UTF-8, not ASCII: both are hex when written, but verify must hash whatever a tampered footer holds.
    return hashlib.sha256((prev_digest + prev_file_sha256).encode())


def chain_digest(prev_digest: str, prev_file_sha256: str, events: Sequence[Event]) -> str:
    h = chain_hash(prev_digest, prev_file_sha256)
    h.update(canonical_bytes(events))
    return h.hexdigest()


def _writer_options(schema: pa.Schema) -> dict:
    """Encodings that make metric points small (measured ~7.5 bytes/point with random values):
    dictionary for strings (keys, run ids repeat), BYTE_STREAM_SPLIT for doubles, DELTA for ints."""
    dictionary, encodings = [], {}
    unique_strings = {"id", "sha256"}

    def walk(path: str, t: pa.DataType) -> None:
        if pa.types.is_list(t):
            walk(f"{path}.list.element", t.value_type)
        elif pa.types.is_struct(t):
            for f in t:
                walk(f"{path}.{f.name}", f.type)
        elif pa.types.is_floating(t):
            encodings[path] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_integer(t):
            encodings[path] = "DELTA_BINARY_PACKED"
        elif pa.types.is_string(t) and path not in unique_strings:
            dictionary.append(path)

    for f in schema:
        walk(f.name, f.type)
    return {
        "compression": "zstd",
        "use_dictionary": dictionary,
        "column_encoding": encodings,
        "write_page_checksum": True,
    }


_WRITE_OPTIONS = _writer_options(SEGMENT_SCHEMA)


class SegmentEncoder:
    """One segment being written: row groups added in seq order, then the footer.

    Each row group is a table of stamped events with the canonical bytes of those same events
    (what the digest covers); the digest and the seq range go into the footer at ``finish``.
    """

    def __init__(self, store: Store, writer: str, prev_digest: str, prev_file_sha256: str):
        self.store = store
        self.writer = writer
        self.prev_digest = prev_digest
        self.prev_file_sha256 = prev_file_sha256
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.count = 0
        self._hash = chain_hash(prev_digest, prev_file_sha256)
        self._sink = pa.BufferOutputStream()
        self._parquet = pq.ParquetWriter(self._sink, SEGMENT_SCHEMA, **_WRITE_OPTIONS)

    def add_events(self, events: Sequence[Event]) -> None:
        if events:
            self.add(events_to_table(events), [canonical_bytes(events)])

    def add(self, table: pa.Table, canonical: Iterable[bytes]) -> None:
        """A row group: ``table``'s events (seqs contiguous with the previous row group) and
        their canonical bytes, in parts."""
        seqs = table.column("seq")
        for part in canonical:
            self._hash.update(part)
        self._parquet.write_table(table, row_group_size=table.num_rows)
        self.first_seq = seqs[0].as_py() if self.first_seq is None else self.first_seq
        self.last_seq = seqs[-1].as_py()
        self.count += table.num_rows

    def finish(self) -> tuple[bytes, SegmentInfo] | None:
        """The Parquet bytes and info of the segment, None if it holds no event."""
        if not self.count:
            self._parquet.close()
            return None
        digest = self._hash.hexdigest()
        self._parquet.add_key_value_metadata(
            {
                "writer": self.writer,
                "first_seq": str(self.first_seq),
                "last_seq": str(self.last_seq),
                "schema_version": str(SCHEMA_VERSION),
                "digest": digest,
                "prev_digest": self.prev_digest,
                "prev_file_sha256": self.prev_file_sha256,
            }
        )
        self._parquet.close()
        relpath = segment_relpath(self.writer, self.first_seq, self.last_seq)
        info = SegmentInfo(
            relpath,
            self.store.url(relpath),
            self.writer,
            self.first_seq,
            self.last_seq,
            self.count,
            digest,
            self.prev_digest,
        )
        return self._sink.getvalue().to_pybytes(), info


def encode_segment(
    store: Store,
    writer: str,
    chunks: Iterable[Sequence[Event]],
    prev_digest: str,
    prev_file_sha256: str,
) -> tuple[bytes, SegmentInfo] | None:
    """The Parquet bytes and info of a segment of the events in ``chunks`` (stamped, contiguous
    seqs), None if there are none. One row group per chunk, so only one chunk's events are in
    memory at a time."""
    encoder = SegmentEncoder(store, writer, prev_digest, prev_file_sha256)
    for chunk in chunks:
        encoder.add_events(chunk)
    return encoder.finish()


def read_metadata(store: Store, relpath: str) -> tuple[dict[str, str], int]:
    """A segment's key-value metadata and row count, from its footer only."""
    with store.open(relpath) as f:
        meta = pq.ParquetFile(f).metadata
    return footer_metadata(meta), meta.num_rows


def footer_metadata(meta: pq.FileMetaData) -> dict[str, str]:
    """The key-value metadata of a Parquet footer (written at close, so pyarrow does not put it
    in a read table's schema), without pyarrow's own serialized schema."""
    return {k.decode(): v.decode() for k, v in (meta.metadata or {}).items() if k != b"ARROW:schema"}


def segment_info(store: Store, relpath: str) -> SegmentInfo:
    kv, rows = read_metadata(store, relpath)
    return SegmentInfo(
        relpath,
        store.url(relpath),
        kv["writer"],
        int(kv["first_seq"]),
        int(kv["last_seq"]),
        rows,
        kv["digest"],
        kv["prev_digest"],
    )


def read_table(store: Store, relpath: str, columns: list[str] | None = None) -> pa.Table:
    """A segment's rows; page checksums are verified, so a changed byte fails loudly."""
    with store.open(relpath) as f:
        return pq.read_table(f, columns=columns, page_checksum_verification=True)


def parquet_from_bytes(data: bytes) -> pq.ParquetFile:
    """A segment's bytes, opened to read row group by row group; page checksums are verified."""
    return pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_events(store: Store, relpath: str) -> list[Event]:
    return table_to_events(read_table(store, relpath))


def list_segments(store: Store, writer: str | None = None) -> list[str]:
    """Relative paths of segments (one writer's, or every writer's), in (writer, seq) order."""
    base = f"{SEGMENTS_DIR}/{writer}" if writer else SEGMENTS_DIR
    return [p for p in store.find(base, ".parquet") if parse_relpath(p)]
