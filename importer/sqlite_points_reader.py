"""The process that reads an MLflow SQLite store's metric points: ``python -m
trackledger.importer.sqlite_points_reader PATH URI`` (started by ``sqlite_points``).

Pages of run ids come in on stdin; each run's points go out on stdout as Arrow IPC streams of
chunks, then a page's end (or its failure, with the reason). Points are read in the order of
MLflow's (run_uuid, key, step) index through ADBC's SQLite driver, which hands over Arrow
batches made in C. The process ignores Ctrl-C (the importing process handles it) and ends when
its pipe closes, also when the importing process is killed.

It imports only what reading needs (pyarrow, ADBC's low-level API, the stdlib): it starts while
the importer reads its first runs, and every tenth of a second before its first chunk is a tenth
the import waits.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection

import adbc_driver_manager
import adbc_driver_sqlite
import pyarrow as pa
import pyarrow.compute as pc

# In the order of MLflow's (run_uuid, key, step) index, ties in the table's order: the same order
# for the same file, and no sort. One run at a time: naming the run in a query of many made SQLite
# build a 32-character string per point (reading at half the speed).
POINTS = (
    "SELECT key, CASE WHEN is_nan THEN NULL ELSE CAST(value AS REAL) END AS value, timestamp, step "
    "FROM metrics WHERE run_uuid = ? ORDER BY key, step"
)
# The fields of ledger.schema.METRIC_TYPE this process fills (a test holds them equal): the
# ledger is not imported here, for the time it takes.
POINT_FIELDS = (
    pa.field("key", pa.string()),
    pa.field("value", pa.float64()),
    pa.field("timestamp", pa.int64()),
    pa.field("step", pa.int64()),
)
LINK_FIELDS = (
    pa.field("model_id", pa.string()),
    pa.field("dataset_name", pa.string()),
    pa.field("dataset_digest", pa.string()),
)
PAGE_END = b""
PAGE_FAILED = b"!"  # then why
PIPE_BYTES = 1 << 20  # a chunk crosses in one write where Linux allows (its default pipe is 64 KiB)


class ReadError(Exception):
    """A page's points cannot be read: the message says which and why."""


def sql_in(values: list) -> str:
    """The placeholders of an SQL ``IN`` list of these values."""
    return "(" + ",".join("?" * len(values)) + ")"


def _serve(requests: Connection, replies: Connection, path: str, uri: str) -> None:
    """Pages of run ids in, their chunks out, until the pipe closes."""
    reader = _PointsReader(path, uri)
    encoder = _ChunkEncoder()
    try:
        while True:
            run_ids, size = requests.recv()
            try:
                for run_id, chunk in reader.chunks(run_ids, size):
                    replies.send_bytes(encoder.encode(run_id, chunk))
            except ReadError as exc:
                replies.send_bytes(PAGE_FAILED + str(exc).encode())
                continue
            replies.send_bytes(PAGE_END)
    except (EOFError, BrokenPipeError):
        return
    finally:
        reader.close()


class _ChunkEncoder:
    """Chunks as Arrow IPC streams, written into one buffer used again for each: a new buffer per
    chunk cost its memory's page faults (20 times the encoding itself)."""

    def __init__(self):
        self._buffer = pa.allocate_buffer(PIPE_BYTES, resizable=True)

    def encode(self, run_id: str, points: pa.RecordBatch) -> memoryview:
        """The chunk's stream, valid until the next ``encode``."""
        schema = points.schema.with_metadata({"run": run_id})
        size = pa.MockOutputStream()
        self._write(size, schema, points)
        if size.size() > self._buffer.size:
            self._buffer.resize(size.size())
        self._write(pa.FixedSizeBufferWriter(self._buffer), schema, points)
        return memoryview(self._buffer)[: size.size()]

    @staticmethod
    def _write(sink: pa.NativeFile, schema: pa.Schema, points: pa.RecordBatch) -> None:
        with pa.ipc.new_stream(sink, schema) as stream:
            stream.write_batch(points)


class _PointsReader:
    def __init__(self, path: str, uri: str):
        self.path = path
        # ADBC's connections autocommit: no read transaction is held between pages (a running
        # MLflow server may write).
        self.database = adbc_driver_sqlite.connect(uri)
        self.points = adbc_driver_manager.AdbcConnection(self.database)
        self.links = sqlite3.connect(uri, uri=True)

    def close(self) -> None:
        self.points.close()
        self.database.close()
        self.links.close()

    def chunks(self, run_ids: list[str], size: int) -> Iterator[tuple[str, pa.RecordBatch]]:
        linked = self._linked(run_ids)
        for run_id in run_ids:
            held, rows = [], 0  # points read, not yet yielded
            try:
                for batch in self._point_batches(run_id, size):
                    held.append(_points(batch))
                    rows += len(batch)
                    while rows >= size:
                        joined = _joined(held)
                        yield run_id, _with_links(joined.slice(0, size), linked.get(run_id))
                        held, rows = [joined.slice(size)], rows - size
            except adbc_driver_manager.Error as exc:
                raise ReadError(
                    f"{self.path}: the metric points of run {run_id} cannot be read "
                    f"({str(exc).splitlines()[0]})"
                ) from None
            if rows:
                yield run_id, _with_links(_joined(held), linked.get(run_id))

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
        statement = adbc_driver_manager.AdbcStatement(self.points)
        try:
            statement.set_sql_query(POINTS)
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(size)})
            statement.bind(pa.record_batch([pa.array([run_id], pa.string())], names=["run_uuid"]))
            stream, _ = statement.execute_query()
            yield from pa.RecordBatchReader.from_stream(stream)
        finally:
            statement.close()


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)


def _points(rows: pa.RecordBatch) -> pa.RecordBatch:
    """Rows of (key, value, timestamp, step) in POINT_FIELDS' types. MLflow stores NaN as 0 and a
    flag, which the query turns into a null (a column less to read)."""
    key, value, timestamp, step = rows.columns
    if value.null_count:
        value = pc.fill_null(value, math.nan)
    columns = [c.cast(f.type) for c, f in zip((key, value, timestamp, step), POINT_FIELDS, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(POINT_FIELDS))


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
    return pa.RecordBatch.from_arrays([*points.columns, *links], schema=pa.schema(POINT_FIELDS + LINK_FIELDS))


def _main(path: str, uri: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the importing process handles Ctrl-C
    replies = os.dup(1)
    os.dup2(2, 1)  # the pipe carries only replies; anything printed goes to stderr
    _serve(Connection(0, writable=False), Connection(replies, readable=False), path, uri)


if __name__ == "__main__":
    _main(*sys.argv[1:])
