"""The metric points of an MLflow SQLite store, read in a process of their own.

Points are the bulk of a store (millions of rows), read through ADBC's SQLite driver, which hands
over Arrow batches made in C (1.3-1.9M points/s here). That driver holds the GIL for much of its
work, so in a thread of the importing process it and the appending thread took turns (measured:
the two together no faster than one). In a process of its own (``sqlite_points_reader``) it runs
beside them; chunks cross a pipe as Arrow IPC streams, never made into Python objects.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection

import pyarrow as pa
from trackledger.importer import sqlite_points_reader as reader
from trackledger.importer.records import SourceError
from trackledger.ledger.schema import METRIC_TYPE

__all__ = ["PointsProcess"]


class PointsProcess:
    """The importing side: asks the reading process for a page's chunks and relays them."""

    def __init__(self, path: str, uri: str):
        self.path, self.uri = path, uri
        self._process: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None

    def chunks(self, run_ids: list[str], size: int) -> Iterator[tuple[str, pa.StructArray]]:
        """(run id, chunk of ``size`` points, a run's last one shorter) of runs in run id order."""
        if run_ids != sorted(run_ids):
            raise ValueError("points are read in run id order")
        self.start()
        self._requests.send((run_ids, size))
        finished = False
        try:
            while (data := self._receive()) != reader.PAGE_END:
                if data[:1] == reader.PAGE_FAILED:
                    finished = True  # the reader stopped the page and waits for the next
                    raise SourceError(data[1:].decode())
                yield _decode(data)
            finished = True
        finally:
            if not finished:  # abandoned midway: the rest of the page would come before the next
                self.close()

    def _receive(self) -> bytes:
        try:
            return self._replies.recv_bytes()
        except EOFError:
            raise SourceError(f"{self.path}: the process reading metric points ended unexpectedly") from None

    def start(self) -> None:
        """Start the reading process, unless it runs."""
        if self._process is not None and self._process.poll() is None:
            return
        self.close()
        # A plain subprocess, not multiprocessing's spawn, which would import the importing
        # program's main module again in the child.
        self._process = subprocess.Popen(
            [sys.executable, "-m", reader.__name__, self.path, self.uri],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._requests = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._replies = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        with contextlib.suppress(OSError, AttributeError):  # Linux only, up to its pipe-max-size
            fcntl.fcntl(self._replies.fileno(), fcntl.F_SETPIPE_SZ, reader.PIPE_BYTES)
        self._process.stdin.close()
        self._process.stdout.close()

    def close(self) -> None:
        """End the reading process (it ends when its pipe closes)."""
        for conn in (self._requests, self._replies):
            if conn is not None:
                conn.close()
        self._requests = self._replies = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def _decode(data: bytes) -> tuple[str, pa.StructArray]:
    """A chunk's run and points (METRIC_TYPE; fields the reader left out, as they were all
    null, are null)."""
    stream = pa.ipc.open_stream(pa.py_buffer(data))
    batch = stream.read_next_batch()
    columns = [
        batch.column(field.name) if field.name in batch.schema.names else pa.nulls(len(batch), field.type)
        for field in METRIC_TYPE
    ]
    points = pa.StructArray.from_arrays(columns, fields=list(METRIC_TYPE))
    return stream.schema.metadata[b"run"].decode(), points
