"""The canonical msgpack of metric points, built from their Arrow columns.

A segment's digest covers each event's msgpack (``ledger.segments``). A bulk loader hands the
ledger events carrying thousands of points as Arrow arrays; making each point a Python object
only to encode it took half of an import's time. ``points_msgpack`` builds the same bytes with
NumPy, column by column, and is held byte for byte to msgspec's encoding of ``list[Metric]``
(tests compare the two).

Each point is first written into a row of a byte matrix in which every field has fixed-width
slots (its name, then its value in the widest form it can take), and for each slot how many of
its bytes the point's encoding keeps (a string's length, an int's marker and its big-endian
tail, none for a field left at its default). Points whose slots keep the same bytes have the same
layout; a source's points come ordered by key and step, so long stretches of points share one
layout, and a stretch is copied out slot range by slot range for all its points at once. Points
whose layouts change too often to be worth it, nulls where a Metric has no None, and a handful of
points go through msgspec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import msgspec
import msgspec.inspect as mi
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from trackledger.ledger.events import Metric
from trackledger.ledger.schema import METRIC_TYPE, metrics_list

__all__ = ["points_msgpack"]

VECTOR_MIN_POINTS = 64  # below this, NumPy's per-call costs exceed msgspec's per-point ones
POINTS_PER_LAYOUT = 16  # fewer on average, and msgspec is faster than copying stretch by stretch
_ENCODE = msgspec.msgpack.Encoder().encode


class _Field(NamedTuple):
    name: str
    encoded_name: np.ndarray  # what precedes the field's value in a point's map
    kind: str  # "str", "float" or "int"
    required: bool  # else omitted when it holds its default (None for a string, 0 for an int)


def _fields() -> tuple[_Field, ...]:
    """Metric's fields, in its order (msgspec encodes a Struct's fields in that order)."""
    kinds = {mi.StrType: "str", mi.FloatType: "float", mi.IntType: "int"}
    defaults = {"str": None, "int": 0}
    fields = []
    for field in mi.type_info(Metric).fields:
        members = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
        found = {kinds.get(type(m)) for m in members if not isinstance(m, mi.NoneType)}
        kind = found.pop() if len(found) == 1 else None
        if kind is None or not (field.required or (kind in defaults and field.default == defaults[kind])):
            raise TypeError(f"points_msgpack cannot encode Metric.{field.name}: teach it this field")
        name = np.frombuffer(_ENCODE(field.name), np.uint8)
        fields.append(_Field(field.name, name, kind, field.required))
    if [f.name for f in fields] != METRIC_TYPE.names:
        raise TypeError("Metric's fields and METRIC_TYPE's columns differ")
    return tuple(fields)


_FIELDS = _fields()


class _Slot(NamedTuple):
    """Bytes of every point's encoding at the same place: ``kept`` of them are its encoding."""

    width: int
    kept: np.ndarray | int  # per point, or for all: a prefix of the slot, or for ints see _int_ranges
    is_int: bool = False
    constant: np.ndarray | None = None  # the same bytes for every point, or
    write: Callable[[np.ndarray], None] | None = None  # writes each point's into a matrix view


def points_msgpack(points: pa.StructArray) -> memoryview | bytes:
    """``msgspec.msgpack.encode(metrics_list(points))``, without a Python object per point."""
    columns = points.flatten()  # the fields with the struct array's offset applied
    if len(points) < VECTOR_MIN_POINTS or points.null_count or not _fits(columns):
        return _ENCODE(metrics_list(points))
    count = len(points)
    slots = [_Slot(1, 1)]  # the map's header, written last
    header = np.full(count, 0x80, np.uint8)  # a fixmap: 0x80 | how many fields (a Metric has < 16)
    for field, column in zip(_FIELDS, columns, strict=True):
        holds = _holds(field, column)
        if holds is False:
            continue
        header += np.uint8(1) if holds is True else holds.astype(np.uint8)
        name = len(field.encoded_name)
        slots.append(_Slot(name, holds * name, constant=field.encoded_name))
        slots.append(_value_slot(field.kind, column, holds))
    changes = _layout_changes([slot.kept for slot in slots if isinstance(slot.kept, np.ndarray)])
    if len(changes) * POINTS_PER_LAYOUT > count:
        return _ENCODE(metrics_list(points))
    matrix = np.empty((count, sum(slot.width for slot in slots)), np.uint8)
    matrix[:] = np.concatenate([_template(slot) for slot in slots])
    start = 0
    for slot in slots:
        if slot.write is not None:
            slot.write(matrix[:, start : start + slot.width])
        start += slot.width
    matrix[:, 0] = header
    return _copy_out(matrix, slots, changes, _array_header(count))


def _layout_changes(kept: list[np.ndarray]) -> np.ndarray:
    """The rows whose layout differs from the row before's."""
    if not kept:
        return np.empty(0, np.int64)
    return np.flatnonzero(np.any(np.diff(np.array(kept), axis=1), axis=0)) + 1


def _copy_out(matrix: np.ndarray, slots: list[_Slot], changes: np.ndarray, head: bytes) -> memoryview:
    """``head``, then the kept bytes of the matrix row by row: stretch by stretch of rows of
    one layout."""
    bounds = [0, *changes.tolist(), len(matrix)]
    firsts = bounds[:-1]
    kept_by_stretch = np.array([np.broadcast_to(slot.kept, len(matrix))[firsts] for slot in slots]).T
    layouts: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    stretches = []
    for first, end, kept in zip(firsts, bounds[1:], map(tuple, kept_by_stretch.tolist()), strict=True):
        if kept not in layouts:
            layouts[kept] = _layout(slots, kept)
        stretches.append((first, end, layouts[kept], sum(kept)))
    out = np.empty(len(head) + sum((end - first) * length for first, end, _, length in stretches), np.uint8)
    out[: len(head)] = np.frombuffer(head, np.uint8)
    position = len(head)
    for first, end, ranges, length in stretches:
        rows = out[position : position + (end - first) * length].reshape(end - first, length)
        at = 0
        for begin, stop in ranges:
            rows[:, at : at + stop - begin] = matrix[first:end, begin:stop]
            at += stop - begin
        position += (end - first) * length
    return memoryview(out)


def _layout(slots: list[_Slot], kept: tuple[int, ...]) -> list[tuple[int, int]]:
    """The matrix's column ranges a point keeps, given how many bytes it keeps of each slot,
    adjacent ones merged."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for slot, count in zip(slots, kept, strict=True):
        pieces = _int_ranges(slot.width, count) if slot.is_int else [(0, count)]
        for begin, stop in pieces:
            if stop == begin:
                continue
            if ranges and ranges[-1][1] == start + begin:
                ranges[-1] = (ranges[-1][0], start + stop)
            else:
                ranges.append((start + begin, start + stop))
        start += slot.width
    return ranges


def _template(slot: _Slot) -> np.ndarray:
    """What a slot holds before its points' bytes are written: its constant bytes, if any."""
    return np.zeros(slot.width, np.uint8) if slot.constant is None else slot.constant


def _fits(columns: list[pa.Array]) -> bool:
    """Whether the columns hold only what the vectorised encoding covers (a null only where a
    Metric may hold None)."""
    return all(
        not column.null_count or (field.kind == "str" and not field.required)
        for field, column in zip(_FIELDS, columns, strict=True)
    )


def _holds(field: _Field, column: pa.Array) -> np.ndarray | bool:
    """Which points encode the field (hold a value other than its default): an array of 0/1,
    True for all or False for none."""
    if field.required:
        return True
    if field.kind == "str":
        if column.null_count == len(column):
            return False
        return True if not column.null_count else np.asarray(column.is_valid()).astype(np.int64)
    holds = column.to_numpy() != 0
    return holds.astype(np.int64) if holds.any() else False


def _value_slot(kind: str, column: pa.Array, holds: np.ndarray | bool) -> _Slot:
    if kind == "float":
        return _Slot(9, holds * 9, write=lambda out: _write_floats(column, out))
    if kind == "int":
        values = column.to_numpy()
        size_class = np.searchsorted(_INT_BOUNDS, values, side="right")
        kept = (1 + _INT_LENGTHS[size_class]) * holds
        return _Slot(9, kept, is_int=True, write=lambda out: _write_ints(values, size_class, out))
    strings = _Strings.of(column)
    kept = strings.lengths[strings.indices] * holds
    return _Slot(strings.encoded.shape[1], kept, write=strings.write)


def _write_floats(column: pa.Array, out: np.ndarray) -> None:
    """A float64 as msgspec writes every float: 0xcb, then its 8 bytes big-endian (NaN's bits kept)."""
    out[:, 0] = 0xCB
    out[:, 1:].view(">f8")[:, 0] = column.to_numpy()


# The smallest msgpack int for a value, by range: a value below _INT_BOUNDS[0] is of class 0, one
# from _INT_BOUNDS[i - 1] up to below _INT_BOUNDS[i] of class i; its marker byte and how many bytes
# follow it. Class 4 (-32..127) is a fixint: its own low byte, nothing after.
_INT_BOUNDS = np.array([-(1 << 31), -(1 << 15), -(1 << 7), -32, 1 << 7, 1 << 8, 1 << 16, 1 << 32])
_INT_MARKERS = np.array([0xD3, 0xD2, 0xD1, 0xD0, 0, 0xCC, 0xCD, 0xCE, 0xCF], np.uint8)
_INT_LENGTHS = np.array([8, 4, 2, 1, 0, 1, 2, 4, 8], np.int64)
_FIXINT = 4


def _write_ints(values: np.ndarray, size_class: np.ndarray, out: np.ndarray) -> None:
    """An int64 as msgspec writes it, in the fewest bytes: a marker, then the low 0, 1, 2, 4 or 8
    bytes of its two's complement, big-endian (written in full here; ``_int_ranges`` keeps them)."""
    out[:, 0] = np.where(size_class == _FIXINT, values.astype(np.uint8), _INT_MARKERS[size_class])
    out[:, 1:].view(">i8")[:, 0] = values


def _int_ranges(width: int, kept: int) -> list[tuple[int, int]]:
    """An int slot's kept bytes: its marker, then the last ``kept - 1`` of the 8 after it."""
    return [(0, 1), (width - kept + 1, width)] if kept else []


class _Strings(NamedTuple):
    """A string column as its distinct values, each encoded once by msgspec, and which of them
    each point holds (a few keys repeat over many points)."""

    encoded: np.ndarray  # (distinct, width) uint8: an encoded value, then zeros
    lengths: np.ndarray  # (distinct,) the bytes of each encoded value
    indices: np.ndarray  # (points,) which distinct value each point holds (a null: any)

    @classmethod
    def of(cls, column: pa.Array) -> _Strings:
        dictionary = pc.dictionary_encode(column)
        distinct = [_ENCODE(value) for value in dictionary.dictionary.to_pylist()] or [b""]
        encoded = np.zeros((len(distinct), max(map(len, distinct))), np.uint8)
        for row, value in enumerate(distinct):
            encoded[row, : len(value)] = np.frombuffer(value, np.uint8)
        lengths = np.array([len(value) for value in distinct], np.int64)
        return cls(encoded, lengths, dictionary.indices.fill_null(0).to_numpy())

    def write(self, out: np.ndarray) -> None:
        np.take(self.encoded, self.indices, axis=0, out=out, mode="clip")


def _array_header(count: int) -> bytes:
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")
