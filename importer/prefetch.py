"""Metric points read ahead of the appends, by a thread, across pages of runs.

Reading a source's points (SQLite in a process of its own, HTTP releasing the GIL) overlaps
appending the events. The importer names each page's runs as soon as it has read the page, a page
before it appends them, so the reading goes on while a page ends and the next begins (measured:
the reader otherwise stood idle at each page's end, 10% of an import of 5M points).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pyarrow as pa
from trackledger.importer.records import Source, SourceRun

__all__ = ["PointsPrefetch"]

_RUN_END = None  # the chunk that ends a run's
_POLL_S = 0.1  # how often a blocked reading thread checks whether it is to stop


class PointsPrefetch:
    """Use as a context manager; ``want`` pages of runs, then take each run's chunks with
    ``of``, runs in the order wanted."""

    def __init__(self, source: Source, chunk_points: int, chunks_ahead: int):
        self._source, self._chunk_points = source, chunk_points
        self._wanted: queue.Queue = queue.Queue()  # lists of runs, then None: no more
        self._chunks: queue.Queue = queue.Queue(maxsize=chunks_ahead)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def want(self, runs: list[SourceRun]) -> None:
        """Read these runs' points next, in this order (the source's: see ``Source.metric_chunks``)."""
        if runs:
            self._wanted.put(runs)

    def of(self, run: SourceRun) -> Iterator[pa.StructArray]:
        """The run's chunks; it must be the next run wanted whose chunks were not taken."""
        while True:
            item = self._chunks.get()
            if isinstance(item, BaseException):
                raise item
            run_id, chunk = item
            if run_id != run.run_id:
                raise RuntimeError(f"points of run {run_id} came while those of {run.run_id} were awaited")
            if chunk is _RUN_END:
                return
            yield chunk

    def close(self) -> None:
        self._stopping.set()
        self._wanted.put(None)
        self._thread.join()

    def __enter__(self) -> PointsPrefetch:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _read(self) -> None:
        try:
            while (runs := self._wanted.get()) is not None and not self._stopping.is_set():
                if not self._read_page(runs):
                    return
        except BaseException as exc:  # handed to the importing thread, which raises it
            self._put(exc)

    def _read_page(self, runs: list[SourceRun]) -> bool:
        """Each run's chunks, then its end (also for a run without points); False when stopped."""
        pending = iter(runs)
        current = next(pending)
        for run_id, chunk in self._source.metric_chunks(runs, self._chunk_points):
            while run_id != current.run_id:
                if not self._put((current.run_id, _RUN_END)):
                    return False
                current = next(pending, None)
                if current is None:
                    raise RuntimeError(f"the source gave points of run {run_id}, not asked for")
            if not self._put((run_id, chunk)):
                return False
        return all(self._put((run.run_id, _RUN_END)) for run in [current, *pending])

    def _put(self, item) -> bool:
        """Queue ``item`` unless told to stop (the importing thread may no longer take any)."""
        while not self._stopping.is_set():
            try:
                self._chunks.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False
