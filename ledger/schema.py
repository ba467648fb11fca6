"""The Arrow/Parquet shape of events: one row per event, one column per field.

The schema is derived from the Structs in ``ledger.events`` so that adding an optional field
there adds a nullable column here. Envelope fields come first, then ``type`` (the tag), then
every other top-level field in order of first appearance. Absent fields are null.

Conversion is column-wise in both directions (no per-row dicts): a log-batch of 1,000 metrics
becomes seven flat child arrays plus list offsets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate
from operator import attrgetter
from typing import Any

import msgspec
import msgspec.inspect as mi
import pyarrow as pa
from trackledger.ledger.events import EVENT_TYPES, SCHEMA_VERSION, TYPE_BY_TAG, Event, Metric

__all__ = [
    "METRIC_TYPE",
    "SCHEMA_VERSION",
    "SEGMENT_SCHEMA",
    "events_to_table",
    "metrics_array",
    "metrics_list",
    "table_to_events",
]

_SCALARS = {
    mi.StrType: pa.string(),
    mi.IntType: pa.int64(),
    mi.BoolType: pa.bool_(),
    mi.FloatType: pa.float64(),
}


def _arrow_type(t: mi.Type) -> pa.DataType:
    if isinstance(t, mi.UnionType):
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        if len(members) != 1:
            raise TypeError(f"only 'X | None' unions map to a column, not {t}")
        return _arrow_type(members[0])
    if isinstance(t, mi.ListType):
        return pa.list_(_arrow_type(t.item_type))
    if isinstance(t, mi.StructType):
        return pa.struct([pa.field(f.name, _arrow_type(f.type)) for f in t.fields])
    return _SCALARS[type(t)]


def _nested_classes(path: str, t: mi.Type, found: dict[str, type]) -> None:
    """Record which Struct class builds the structs at each column path (for the way back).

    Keyed by path, not Arrow type: Tag and Param have the same shape, and Parquet renames list items.
    """
    if isinstance(t, mi.UnionType):
        for member in t.types:
            _nested_classes(path, member, found)
    elif isinstance(t, mi.ListType):
        _nested_classes(path, t.item_type, found)
    elif isinstance(t, mi.StructType):
        if found.setdefault(path, t.cls) is not t.cls:
            raise TypeError(f"column {path!r} holds both {found[path].__name__} and {t.cls.__name__}")
        for f in t.fields:
            _nested_classes(f"{path}.{f.name}", f.type, found)


def _build_schema() -> tuple[pa.Schema, dict[str, type]]:
    envelope = [f for f in mi.type_info(Event).fields]
    columns: dict[str, pa.DataType] = {f.name: _arrow_type(f.type) for f in envelope}
    columns["type"] = pa.string()
    classes: dict[str, type] = {}
    for cls in EVENT_TYPES:
        for f in mi.type_info(cls).fields:
            arrow = _arrow_type(f.type)
            if columns.setdefault(f.name, arrow) != arrow:
                raise TypeError(f"field {f.name!r} has two types: {columns[f.name]} and {arrow}")
            _nested_classes(f.name, f.type, classes)
    return pa.schema([pa.field(name, t) for name, t in columns.items()]), classes


def _identity_defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    """Fields whose default could be encoded anyway: msgspec's ``omit_defaults`` compares by
    identity, so a field equal to but not the very default object (``"RUNNING"`` read back from
    Parquet) would be written out and change the canonical bytes. Singletons are safe."""
    risky = []
    for f in mi.type_info(cls).fields:
        default = f.default
        if default is msgspec.NODEFAULT or default is None or isinstance(default, bool) or default == "":
            continue
        if type(default) is int and -5 <= default <= 256:  # CPython's cached small ints
            continue
        risky.append((f.name, default))
    return tuple(risky)


SEGMENT_SCHEMA, _STRUCT_CLASSES = _build_schema()
_TAG_TO_FIELDS: dict[str, frozenset[str]] = {
    tag: frozenset(cls.__struct_fields__) for tag, cls in TYPE_BY_TAG.items()
}
METRIC_TYPE: pa.StructType = SEGMENT_SCHEMA.field("metrics").type.value_type
_RISKY_DEFAULTS = {tag: _identity_defaults(cls) for tag, cls in TYPE_BY_TAG.items()}
for _cls in _STRUCT_CLASSES.values():
    if _identity_defaults(_cls):  # canonical() only fixes top-level fields
        raise TypeError(f"{_cls.__name__}: nested Structs may only have None, '', small int or bool defaults")


def default_overrides(event: Event) -> dict[str, Any]:
    """Replacements that make ``event`` canonical: fields equal to their default become it."""
    overrides = {}
    for name, default in _RISKY_DEFAULTS[event.__struct_config__.tag]:
        value = getattr(event, name)
        if value is not default and value == default:
            overrides[name] = default
    return overrides


# Events -> Arrow ---------------------------------------------------------------------


def _to_arrow(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """Python values (scalars, Structs, lists of Structs, None) to one Arrow array."""
    if pa.types.is_list(arrow_type):
        offsets = [0]
        nulls = []
        flat: list[Any] = []
        for value in values:
            nulls.append(value is None)
            if value is not None:
                flat.extend(value)
            offsets.append(len(flat))
        child = _to_arrow(flat, arrow_type.value_type)
        mask = pa.array(nulls, pa.bool_()) if any(nulls) else None
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), child, type=arrow_type, mask=mask)
    if pa.types.is_struct(arrow_type):
        children = [_to_arrow(list(map(attrgetter(f.name), values)), f.type) for f in arrow_type]
        return pa.StructArray.from_arrays(children, fields=list(arrow_type))
    if values.count(None) == len(values):  # most columns of a row are other event types' fields
        return pa.nulls(len(values), arrow_type)
    return pa.array(values, type=arrow_type)


def events_to_table(events: Sequence[Event], points: Mapping[int, pa.Array] | None = None) -> pa.Table:
    """Events to a table of SEGMENT_SCHEMA, one row per event.

    ``points`` gives some rows (BatchLogged events with no ``metrics`` of their own) their
    metric points as Arrow arrays of METRIC_TYPE: bulk loaders build them from their source's
    columns without making a Python object per point.
    """
    arrays = []
    for field in SEGMENT_SCHEMA:
        if field.name == "type":
            values = [e.__struct_config__.tag for e in events]
        else:
            name = field.name
            values = [getattr(e, name, None) for e in events]
        array = _to_arrow(values, field.type)
        if points and field.name == "metrics":
            array = _with_points(array, points)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=SEGMENT_SCHEMA)


def _with_points(own: pa.ListArray, points: Mapping[int, pa.Array]) -> pa.ListArray:
    """The ``metrics`` column with the given rows' points in place of their own (empty) lists."""
    offsets = own.offsets.to_pylist()
    pieces, lengths = [], []
    start = 0  # the first row of a stretch keeping its own points
    for row in sorted(points):
        pieces.append(own.values.slice(offsets[start], offsets[row] - offsets[start]))
        pieces.append(points[row])
        start = row + 1
    pieces.append(own.values.slice(offsets[start], offsets[-1] - offsets[start]))
    lengths = [
        len(points[row]) if row in points else offsets[row + 1] - offsets[row] for row in range(len(own))
    ]
    return pa.ListArray.from_arrays(
        pa.array(list(accumulate(lengths, initial=0)), pa.int32()),
        pa.concat_arrays(pieces),
        type=own.type,
        mask=own.is_null() if own.null_count else None,
    )


def metrics_array(metrics: Sequence[Metric]) -> pa.StructArray:
    """Points as one Arrow array of METRIC_TYPE."""
    return _to_arrow(list(metrics), METRIC_TYPE)


def metrics_list(points: pa.Array) -> list[Metric]:
    """An Arrow array of METRIC_TYPE as points."""
    return _to_python(points, METRIC_TYPE, "metrics")


# Arrow -> events ---------------------------------------------------------------------


def _to_python(array: pa.Array, arrow_type: pa.DataType, path: str) -> list[Any]:
    """The inverse of ``_to_arrow``: nested structs become their msgspec Struct class."""
    if pa.types.is_list(arrow_type):
        offsets = array.offsets.to_pylist()
        flat = _to_python(array.values, arrow_type.value_type, path)
        valid = array.is_valid().to_pylist() if array.null_count else None
        return [
            flat[offsets[i] : offsets[i + 1]] if valid is None or valid[i] else None
            for i in range(len(array))
        ]
    if pa.types.is_struct(arrow_type):
        cls = _STRUCT_CLASSES[path]
        children = [_to_python(array.field(i), f.type, f"{path}.{f.name}") for i, f in enumerate(arrow_type)]
        return list(map(cls, *children))
    if array.null_count == len(array):  # e.g. points' model and dataset, mostly none
        return [None] * len(array)
    return array.to_pylist()


def table_to_events(table: pa.Table) -> list[Event]:
    """Rows of a segment (or any table with a subset of its columns) back to events, exactly.

    Columns a table lacks (segments written before a field existed) take the field's default.
    """
    table = table.combine_chunks()
    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        chunk = column.chunk(0) if column.num_chunks else pa.array([], column.type)
        columns[name] = _to_python(chunk, column.type, name)
    tags = columns.pop("type")
    events = []
    for row, tag in enumerate(tags):
        fields = _TAG_TO_FIELDS[tag]
        kwargs = {
            name: values[row]
            for name, values in columns.items()
            if values[row] is not None and name in fields
        }
        for name, default in _RISKY_DEFAULTS[tag]:
            if kwargs.get(name) == default:
                del kwargs[name]
        events.append(TYPE_BY_TAG[tag](**kwargs))
    return events


def canonical_bytes(events: Sequence[Event], encoder: msgspec.msgpack.Encoder | None = None) -> bytes:
    """The bytes a segment digest is computed over: each event's msgpack, concatenated.

    Events must be canonical (see ``default_overrides``); the ledger makes them so on append.
    """
    encode = (encoder or _ENCODER).encode
    return b"".join(map(encode, events))


_ENCODER = msgspec.msgpack.Encoder()
