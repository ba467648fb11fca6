"""The answer of ``POST /api/sql`` in its format (JSON, CSV, Parquet), encoded as the sandbox reads
it, so the bytes cap is on the answer as sent and nothing larger is ever built.

Each is a ``projections.sandbox.Answer``: it takes the longest prefix of a batch that fits the bytes
left and says how many rows that was.
"""

from __future__ import annotations

import io

import msgspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from trackledger.projections.sandbox import ArrowAnswer, rows_within

JSON_TAIL = 80  # bytes kept for the JSON answer's closing `"row_count": N, "truncated": ...}`


class JsonAnswer:
    """``{"columns", "types", "rows", "row_count", "truncated"[, "truncated_by"]}``; its size is
    the JSON's bytes."""

    media_type = "application/json"

    def __init__(self) -> None:
        self.size = 0
        self._head = b""
        self._rows: list[bytes] = []

    def start(self, schema: pa.Schema) -> None:
        names = msgspec.json.encode(schema.names)
        types = msgspec.json.encode([str(t) for t in schema.types])
        self._head = b'{"columns":' + names + b',"types":' + types + b',"rows":['
        self.size = len(self._head) + JSON_TAIL

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        columns = [column.to_pylist() for column in batch.columns]
        taken = 0
        for row in zip(*columns, strict=True):
            encoded = msgspec.json.encode(row, enc_hook=str)
            if len(encoded) + 1 > budget:  # 1: the comma before it
                break
            self._rows.append(encoded)
            budget -= len(encoded) + 1
            self.size += len(encoded) + 1
            taken += 1
        return taken

    def body(self, truncated_by: str | None) -> bytes:
        tail = {"row_count": len(self._rows), "truncated": truncated_by is not None}
        if truncated_by:
            tail["truncated_by"] = truncated_by
        return b"".join((self._head, b",".join(self._rows), b"],", msgspec.json.encode(tail)[1:]))

    def headers(self, truncated_by: str | None) -> dict[str, str]:
        return {}


class CsvAnswer:
    """A header line and the rows; its size is the CSV's bytes."""

    media_type = "text/csv"

    def __init__(self) -> None:
        self.size = 0
        self._pieces: list[bytes] = []

    def start(self, schema: pa.Schema) -> None:
        self._append(_csv(schema.empty_table(), header=True))

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        taken = rows_within(batch, budget, lambda rows: len(_csv(rows, header=False)))
        if taken:
            self._append(_csv(batch.slice(0, taken), header=False))
        return taken

    def _append(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self.size += len(piece)

    def body(self, truncated_by: str | None) -> bytes:
        return b"".join(self._pieces)

    def headers(self, truncated_by: str | None) -> dict[str, str]:
        return {"x-trackledger-truncated": truncated_by or "false"}


class ParquetAnswer(ArrowAnswer):
    """A Parquet file written from the rows once all are read; its size is their Arrow data's
    (the compressed file is smaller)."""

    media_type = "application/vnd.apache.parquet"

    def body(self, truncated_by: str | None) -> bytes:
        sink = io.BytesIO()
        pq.write_table(self.table(), sink)
        return sink.getvalue()

    def headers(self, truncated_by: str | None) -> dict[str, str]:
        return {"x-trackledger-truncated": truncated_by or "false"}


ANSWERS = {"json": JsonAnswer, "csv": CsvAnswer, "parquet": ParquetAnswer}


def _csv(rows: pa.RecordBatch | pa.Table, header: bool) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(rows, sink, pacsv.WriteOptions(include_header=header))
    return sink.getvalue()
