"""The canonical msgpack of metric points built from Arrow columns (what a bulk writer's digest
covers) is msgspec's encoding of the same points, byte for byte: every int width and sign, every
string length class, NaN, infinities and negative zero, optional fields held by some points."""

from __future__ import annotations

import math

import msgspec
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trackledger.ledger import points_msgpack as module
from trackledger.ledger import verify
from trackledger.ledger.events import BatchLogged, Metric, keyed_event_id
from trackledger.ledger.ledger import Ledger
from trackledger.ledger.points_msgpack import VECTOR_MIN_POINTS, points_msgpack
from trackledger.ledger.schema import metrics_array

encode = msgspec.msgpack.encode

# Both sides of every boundary of msgpack's int encodings, and typical values.
INT_EDGES = [
    *(
        sign * (1 << bits) + delta
        for bits in (5, 7, 8, 15, 16, 31, 32)
        for sign in (1, -1)
        for delta in (-1, 0, 1)
    ),
    0,
    1,
    -1,
    (1 << 63) - 1,
    -(1 << 63),
    1_700_000_000_000,
]
ints = st.one_of(st.sampled_from(INT_EDGES), st.integers(-(1 << 63), (1 << 63) - 1))
floats = st.one_of(
    st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324]), st.floats()
)
# Lengths on both sides of fixstr (31), str8 (255) and str16 (65535) encodings, and non-ASCII text.
strings = st.one_of(
    st.sampled_from(["", "a" * 31, "a" * 32, "é" * 127, "b" * 255, "b" * 256, "c" * 65536]),
    st.text(max_size=40),
)
optional = st.one_of(st.none(), strings)
metrics = st.builds(
    Metric,
    key=strings,
    value=floats,
    timestamp=ints,
    step=st.one_of(st.just(0), ints),
    model_id=optional,
    dataset_name=optional,
    dataset_digest=optional,
)


@pytest.fixture
def vectorised_only(monkeypatch):
    """Fail where the encoding would fall back to msgspec, so a test cannot pass through it."""

    def refuse(points):
        raise AssertionError("fell back to msgspec")

    monkeypatch.setattr(module, "metrics_list", refuse)
    monkeypatch.setattr(module, "POINTS_PER_LAYOUT", 0)  # however often layouts change


@settings(max_examples=150, deadline=None)
@given(points=st.lists(metrics, min_size=VECTOR_MIN_POINTS, max_size=200), start=st.integers(0, 10))
def test_points_encode_as_msgspec_encodes_them(points, start):
    # Any mix of fields and values, also from an array sliced at an offset (as a chunk is).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "POINTS_PER_LAYOUT", 0)
        patch.setattr(module, "metrics_list", lambda _: pytest.fail("fell back to msgspec"))
        array = metrics_array(points).slice(start)
        if len(array) >= VECTOR_MIN_POINTS:
            assert bytes(points_msgpack(array)) == encode(points[start:])


def history(points: int, keys: int = 5) -> list[Metric]:
    """A source's order: by key, then step; steps cross the fixint, 1- and 2-byte widths."""
    per_key = points // keys
    return [
        Metric(f"metric_{k}", (i * 7919 % 1000) / 1000.0, 1_700_000_000_000 + i, i)
        for k in range(keys)
        for i in range(per_key)
    ]


def test_a_long_history_in_the_source_order_is_encoded_by_layout_stretches(vectorised_only, monkeypatch):
    points = history(5_000)
    monkeypatch.setattr(module, "POINTS_PER_LAYOUT", 16)  # the default: this order stays vectorised
    assert bytes(points_msgpack(metrics_array(points))) == encode(points)


def test_few_points_or_nulls_where_a_metric_has_no_none_go_through_msgspec(monkeypatch):
    calls = []
    real = module.metrics_list
    monkeypatch.setattr(module, "metrics_list", lambda array: calls.append(len(array)) or real(array))
    few = history(10, keys=1)
    assert points_msgpack(metrics_array(few)) == encode(few)
    assert calls == [10]
    many = metrics_array(history(100, keys=1))
    fields = many.flatten()
    fields[1] = pa.array([None, *fields[1].to_pylist()[1:]], pa.float64())  # a null value
    with_null = pa.StructArray.from_arrays(fields, fields=list(many.type))
    assert points_msgpack(with_null) == encode(module.metrics_list(with_null))
    assert calls[-1] == 100


def test_a_bulk_segment_of_long_batches_verifies(tmp_path, vectorised_only):
    batches = [
        BatchLogged(id=keyed_event_id("run", i), run_id="r1", experiment_id="1", metrics=history(1_000))
        for i in range(3)
    ]
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger, ledger.bulk() as bulk:
        bare = [msgspec.structs.replace(b, metrics=[]) for b in batches]
        bulk.add(bare, {i: metrics_array(b.metrics) for i, b in enumerate(batches)})
    report = verify(str(tmp_path / "store"))
    assert report.ok, report
