"""Integrity check of a store: recompute every segment's digest and walk each writer's chain.

Per writer, in seq order, a segment must: be readable with intact page checksums; carry metadata
naming the writer and seq range its file name says; start right after the previous segment (seq 1
for the first); point at the previous segment's digest and file hash; hold exactly the events
first_seq..last_seq of that writer; and hash (with prev_digest) to its recorded digest. The first
segment failing any of these is reported and the writer's later segments are not trusted.

What a chain cannot show: the newest segments of a writer being deleted (the chain stays valid up to
the new end), or a change to a writer's newest file that leaves its events intact (statistics, say).
Compare the head digests printed by ``trackledger verify`` with an earlier run for those.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
from trackledger.ledger import segments as seg
from trackledger.ledger.schema import canonical_bytes, table_to_events
from trackledger.ledger.store import Store, open_store

__all__ = ["Problem", "VerifyReport", "WriterSummary", "verify"]


class Problem(msgspec.Struct, frozen=True):
    path: str  # the first bad segment of its writer, relative to the store
    writer: str
    reason: str


class WriterSummary(msgspec.Struct):
    writer: str
    segments: int = 0
    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    head_digest: str = ""  # digest of the last good segment
    head_file_sha256: str = ""  # and the sha256 of its file
    head_path: str = ""  # and where it is


class VerifyReport(msgspec.Struct):
    store: str
    writers: list[WriterSummary]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        lines = [f"store {self.store}: {'OK' if self.ok else 'BROKEN'}"]
        for w in self.writers:
            lines.append(
                f"  writer {w.writer}: {_count(w.segments, 'segment')}, {_count(w.events, 'event')}, "
                f"seq {w.first_seq}..{w.last_seq}, head {w.head_digest[:16] or '-'}"
            )
        for p in self.problems:
            lines.append(f"  FIRST BAD SEGMENT {p.path}: {p.reason}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def verify(store: str | os.PathLike | Store, storage_options: dict[str, Any] | None = None) -> VerifyReport:
    store = store if isinstance(store, Store) else open_store(store, storage_options)
    by_writer: dict[str, list[str]] = {}
    problems = []
    for relpath in store.find(seg.SEGMENTS_DIR, ".parquet"):
        parsed = seg.parse_relpath(relpath)
        if parsed is None:
            problems.append(Problem(relpath, "", "not a segment name (<writer>/<first>-<last>.parquet)"))
            continue
        by_writer.setdefault(parsed[0], []).append(relpath)
    summaries = []
    for writer, relpaths in sorted(by_writer.items()):
        summary = WriterSummary(writer)
        summaries.append(summary)
        for relpath in relpaths:
            problem = _check_segment(store, relpath, writer, summary)
            if problem:
                problems.append(problem)
                break
    return VerifyReport(store.url(""), summaries, problems)


def _check_segment(store: Store, relpath: str, writer: str, summary: WriterSummary) -> Problem | None:
    """How ``relpath`` breaks ``writer``'s chain so far, or None (and ``summary`` advances)."""
    reason = _check_contents(store, relpath, writer, summary)
    if reason == _PREVIOUS_FILE_CHANGED:
        # This segment is intact (its digest covers its prev_file_sha256), so the previous one changed.
        return Problem(summary.head_path, writer, reason)
    return Problem(relpath, writer, reason) if reason else None


def _claimed_seqs(meta: dict[str, str]) -> tuple[int, int] | None:
    """The seq range the footer claims, or None when a changed byte left it unreadable as numbers."""
    try:
        return int(meta["first_seq"]), int(meta["last_seq"])
    except ValueError:
        return None


_PREVIOUS_FILE_CHANGED = "file changed: its bytes do not match the next segment's prev_file_sha256"


def _check_contents(store: Store, relpath: str, writer: str, summary: WriterSummary) -> str | None:
    _, name_first, name_last = seg.parse_relpath(relpath)
    try:
        data = store.read_bytes(relpath)
        parquet = seg.parquet_from_bytes(data)
        meta = seg.footer_metadata(parquet.metadata)
    except Exception as exc:
        return f"unreadable: {type(exc).__name__}: {exc}"
    missing = [k for k in seg.METADATA_KEYS if k not in meta]
    if missing:
        return f"metadata lacks {', '.join(missing)}"
    claimed_seqs = _claimed_seqs(meta)
    if claimed_seqs is None:
        return f"metadata is malformed: seq {meta['first_seq']!r}..{meta['last_seq']!r} is not a number range"
    if meta["writer"] != writer or claimed_seqs != (name_first, name_last):
        return (
            f"file name does not match its metadata (writer {meta['writer']}, "
            f"seq {meta['first_seq']}..{meta['last_seq']}): moved or swapped"
        )
    expected_first = summary.last_seq + 1
    if name_first != expected_first:
        what = "missing" if name_first > expected_first else "overlapping"
        return f"seq gap: expected first_seq {expected_first}, found {name_first} ({what} segment before it)"
    if meta["prev_digest"] != summary.head_digest:
        return "chain broken: prev_digest is not the digest of the previous segment"
    # Row group by row group: a segment's events are never all in memory at once.
    h = seg.chain_hash(meta["prev_digest"], meta["prev_file_sha256"])
    next_seq = name_first
    for group in range(parquet.num_row_groups):
        try:
            events = table_to_events(parquet.read_row_group(group))
        except Exception as exc:
            return f"unreadable: {type(exc).__name__}: {exc}"
        seqs = [e.seq for e in events]
        if seqs != list(range(next_seq, next_seq + len(events))) or any(e.writer != writer for e in events):
            return "events do not match the seq range or writer the segment claims"
        next_seq += len(events)
        h.update(canonical_bytes(events))
    if next_seq != name_last + 1:
        return "events do not match the seq range or writer the segment claims"
    digest = h.hexdigest()
    if digest != meta["digest"]:
        return "digest mismatch: the events were changed"
    if meta["prev_file_sha256"] != summary.head_file_sha256:
        return _PREVIOUS_FILE_CHANGED
    if summary.segments == 0:
        summary.first_seq = name_first
    summary.segments += 1
    summary.events += next_seq - name_first
    summary.last_seq = name_last
    summary.head_digest = digest
    summary.head_file_sha256 = seg.file_sha256(data)
    summary.head_path = relpath
    return None
