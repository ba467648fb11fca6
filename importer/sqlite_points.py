"""The metric points of an MLflow SQLite store, read in a process of their own.

Points are the bulk of a store (millions of rows). Each run's are read in the order of MLflow's
(run_uuid, key, step) index through ADBC's SQLite driver, which hands over Arrow batches made in C
(1.3-1.9M points/s here), and cut into chunks; the importer asks for a page of runs at a time.
That driver holds the GIL for much of its work, so in a thread of the importing process it and
the appending thread took turns (measured: the two together no faster than one). In a process of
its own it runs beside them; chunks cross a pipe as Arrow IPC streams, never made into Python
objects.

The reading process (``python -m trackledger.importer.sqlite_points``) ignores Ctrl-C (the
importing process handles it) and ends when its pipe closes, also when the importing process is
killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection

import adbc_driver_manager
import adbc_driver_sqlite.dbapi
import pyarrow as pa
import pyarrow.compute as pc
from trackledger.importer.records import SourceError
from trackledger.ledger.schema import METRIC_TYPE

# In the order of MLflow's (run_uuid, key, step) index, ties in the table's order: the same order
# for the same file, and no sort. One run at a time: naming the run in a query of many made SQLite
# build a 32-character string per point (reading at half the speed).
POINTS = (
    "SELECT key, CASE WHEN is_nan THEN NULL ELSE CAST(value AS REAL) END AS value, timestamp, step "
    "FROM metrics WHERE run_uuid = ? ORDER BY key, step"
)
_END = b""
_FAILED = b"!"  # then the SourceError's message
PIPE_BYTES = 1 << 20  # a chunk crosses in one write where Linux allows (its default pipe is 64 KiB)


def sql_in(values: list) -> str:
    """The placeholders of an SQL ``IN`` list of these values."""
    return "(" + ",".join("?" * len(values)) + ")"


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
        self._start()
        self._requests.send((run_ids, size))
        finished = False
        try:
            while (data := self._receive()) != _END:
                if data[:1] == _FAILED:
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

    def _start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self.close()
        # A plain subprocess, not multiprocessing's spawn, which would import the importing
        # program's main module again in the child.
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, self.path, self.uri],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._requests = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._replies = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        with contextlib.suppress(OSError, AttributeError):  # Linux only, up to its pipe-max-size
            fcntl.fcntl(self._replies.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
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


def _serve(requests: Connection, replies: Connection, path: str, uri: str) -> None:
    """The reading process: pages of run ids in, their chunks out, until the pipe closes."""
    reader = _PointsReader(path, uri)
    try:
        while True:
            run_ids, size = requests.recv()
            try:
                for run_id, chunk in reader.chunks(run_ids, size):
                    replies.send_bytes(_encode(run_id, chunk))
            except SourceError as exc:
                replies.send_bytes(_FAILED + str(exc).encode())
                continue
            replies.send_bytes(_END)
    except (EOFError, BrokenPipeError):
        return
    finally:
        reader.close()


def _encode(run_id: str, points: pa.RecordBatch) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, points.schema.with_metadata({"run": run_id})) as stream:
        stream.write_batch(points)
    return sink.getvalue()


def _decode(data: bytes) -> tuple[str, pa.StructArray]:
    """A chunk's run and points (METRIC_TYPE; fields the reader left out, as they were all
    null, are null)."""
    reader = pa.ipc.open_stream(pa.py_buffer(data))
    batch = reader.read_next_batch()
    columns = [
        batch.column(field.name) if field.name in batch.schema.names else pa.nulls(len(batch), field.type)
        for field in METRIC_TYPE
    ]
    points = pa.StructArray.from_arrays(columns, fields=list(METRIC_TYPE))
    return reader.schema.metadata[b"run"].decode(), points


class _PointsReader:
    def __init__(self, path: str, uri: str):
        self.path = path
        # Autocommit: no read transaction is held between pages (a running MLflow server may write).
        self.points = adbc_driver_sqlite.dbapi.connect(uri, autocommit=True)
        self.links = sqlite3.connect(uri, uri=True)

    def close(self) -> None:
        self.points.close()
        self.links.close()

    def chunks(self, run_ids: list[str], size: int) -> Iterator[tuple[str, pa.StructArray]]:
        linked = self._linked(run_ids)
        for run_id in run_ids:
            held, rows = [], 0  # points read, not yet yielded
            try:
                for batch in self._point_batches(run_id, size):
                    held.append(_points(batch))
                    rows += len(batch)
                    while rows >= size:
                        joined = held[0] if len(held) == 1 else pa.concat_batches(held)
                        yield run_id, _with_links(joined.slice(0, size), linked.get(run_id))
                        held, rows = [joined.slice(size)], rows - size
            except adbc_driver_manager.Error as exc:
                raise SourceError(
                    f"{self.path}: the metric points of run {run_id} cannot be read "
                    f"({str(exc).splitlines()[0]})"
                ) from None
            if rows:
                yield run_id, _with_links(pa.concat_batches(held), linked.get(run_id))

    def _linked(self, run_ids: list[str]) -> dict[str, dict]:
        """Points logged against a logged model (MLflow writes them to both tables) keep their
        model and dataset: per run, (key, timestamp, step, value) -> (model, dataset name, digest)."""
        linked: dict[str, dict] = {}
        for run_id, model_id, key, ts, step, value, ds_name, ds_digest in self.links.execute(
            "SELECT run_id, model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, "
            f"dataset_name, dataset_digest FROM logged_model_metrics WHERE run_id IN {sql_in(run_ids)}",
            run_ids,
        ):
            linked.setdefault(run_id, {})[(key, ts, step, value)] = (model_id, ds_name, ds_digest)
        return linked

    def _point_batches(self, run_id: str, size: int) -> Iterator[pa.RecordBatch]:
        """The run's points in batches of ``size`` (its chunks, as a rule: no copy to cut them)."""
        cursor = self.points.cursor()
        try:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(size)})
            cursor.execute(POINTS, (run_id,))
            yield from cursor.fetch_record_batch()
        finally:
            cursor.close()


def _points(rows: pa.RecordBatch) -> pa.RecordBatch:
    """Rows of (key, value, timestamp, step) in METRIC_TYPE's types. MLflow stores NaN as 0 and a
    flag, which the query turns into a null (a column less to read)."""
    key, value, timestamp, step = rows.columns
    if value.null_count:
        value = pc.fill_null(value, math.nan)
    fields = list(METRIC_TYPE)[:4]
    columns = [
        column.cast(field.type) for column, field in zip((key, value, timestamp, step), fields, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))


def _with_links(points: pa.RecordBatch, linked: dict | None) -> pa.RecordBatch:
    """The points with the logged model and dataset each was logged for, if any (NaN keyed as None)."""
    if not linked:
        return points
    keys, values, stamps, steps = (column.to_pylist() for column in points.columns)
    found = [
        linked.get((k, t, s, None if v != v else v), (None, None, None))
        for k, v, t, s in zip(keys, values, stamps, steps, strict=True)
    ]
    links = [pa.array(column, pa.string()) for column in zip(*found, strict=True)]
    return pa.RecordBatch.from_arrays([*points.columns, *links], schema=pa.schema(list(METRIC_TYPE)))


def _main(path: str, uri: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the importing process handles Ctrl-C
    replies = os.dup(1)
    os.dup2(2, 1)  # the pipe carries only replies; anything printed goes to stderr
    _serve(Connection(0, writable=False), Connection(replies, readable=False), path, uri)


if __name__ == "__main__":
    _main(*sys.argv[1:])
