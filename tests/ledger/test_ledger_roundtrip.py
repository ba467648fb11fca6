"""Every event type survives the WAL and a Parquet segment exactly (byte-identical msgpack)."""

from __future__ import annotations

import uuid

import msgspec
import msgspec.inspect as mi
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackledger.ledger import SEGMENT_SCHEMA, Ledger, events_to_table, table_to_events
from trackledger.ledger import segments as seg
from trackledger.ledger.events import EVENT_TYPES, Event

INT64 = st.integers(-(2**63), 2**63 - 1)
SCALARS = {
    mi.StrType: st.text(max_size=12),
    mi.IntType: INT64,
    mi.BoolType: st.booleans(),
    mi.FloatType: st.floats(allow_nan=True, allow_infinity=True),
}


def strategy_for(t: mi.Type) -> st.SearchStrategy:
    if isinstance(t, mi.UnionType):
        return st.one_of(*(st.none() if isinstance(m, mi.NoneType) else strategy_for(m) for m in t.types))
    if isinstance(t, mi.ListType):
        return st.lists(strategy_for(t.item_type), max_size=4)
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    return SCALARS[type(t)]


def struct_strategy(cls: type) -> st.SearchStrategy:
    """Instances of a Struct: required fields always, optional ones sometimes (including = default)."""
    fields = mi.type_info(cls).fields
    required = {f.name: strategy_for(f.type) for f in fields if f.required}
    optional = {f.name: strategy_for(f.type) for f in fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


def with_fresh_ids(events: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(e, id=str(uuid.uuid4())) for e in events]


ANY_EVENTS = st.lists(st.one_of(*map(struct_strategy, EVENT_TYPES)), min_size=1, max_size=8).map(
    with_fresh_ids
)
encode = msgspec.msgpack.encode


def as_stamped(original: Event, stamped: Event) -> bytes:
    """What ``original`` should look like once appended: seq, ts and writer set."""
    return encode(msgspec.structs.replace(original, seq=stamped.seq, ts=stamped.ts, writer=stamped.writer))


@settings(max_examples=5, deadline=None)
@given(st.data())
def test_every_event_type_is_generated(data):
    drawn_types = {type(data.draw(struct_strategy(cls))) for cls in EVENT_TYPES}
    assert drawn_types == set(EVENT_TYPES)


def test_schema_has_a_column_for_every_field():
    columns = set(SEGMENT_SCHEMA.names)
    for cls in EVENT_TYPES:
        assert set(cls.__struct_fields__) <= columns, cls.__name__
    assert "type" in columns


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_EVENTS)
def test_table_round_trip_is_exact(events):
    table = events_to_table(events)
    assert table.schema == SEGMENT_SCHEMA
    assert [encode(e) for e in table_to_events(table)] == [encode(e) for e in events]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=ANY_EVENTS)
def test_wal_and_segment_round_trip_is_exact(tmp_path_factory, events):
    base = tmp_path_factory.mktemp("rt")
    with Ledger(str(base / "store"), str(base / "state")) as ledger:
        stamped = ledger.append(events)
        assert [as_stamped(o, s) for o, s in zip(events, stamped, strict=True)] == list(map(encode, stamped))
        from_wal = list(ledger.read())
        assert list(map(encode, from_wal)) == list(map(encode, stamped))
        info = ledger.roll()
        from_segment = seg.read_events(ledger.store, info.path)
        assert list(map(encode, from_segment)) == list(map(encode, stamped))
        assert info.digest == seg.chain_digest("", "", from_segment)
    # Reopened: the WAL is empty and the same events come back from the segment.
    with Ledger(str(base / "store"), str(base / "state")) as ledger:
        assert list(map(encode, ledger.read())) == list(map(encode, stamped))


@settings(max_examples=30, deadline=None)
@given(ANY_EVENTS)
def test_old_segments_without_a_new_column_still_read(events):
    """Schema evolution: a column added later is simply absent from older files."""
    table = events_to_table(events)
    older = table.drop_columns(["user_agent"])
    assert list(map(encode, table_to_events(older))) == [
        encode(msgspec.structs.replace(e, user_agent=None)) for e in events
    ]


def test_conversion_is_columnar_for_big_batches():
    from trackledger.ledger.events import BatchLogged, Metric

    metrics = [Metric(key=f"k{i % 10}", value=i / 3, timestamp=i, step=i) for i in range(1000)]
    table = events_to_table([BatchLogged(id="b", metrics=metrics)])
    column = table.column("metrics").combine_chunks()
    assert isinstance(column, pa.ListArray) and len(column.values) == 1000
    assert table_to_events(table)[0].metrics == metrics
