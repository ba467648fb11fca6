"""The bulk writer: events (their metric points as Arrow) straight into segments, no WAL.

What it writes must be what the WAL path writes: the same events read back, the same canonical
bytes under the digest, a chain ``verify`` accepts; ids are appended once; an ``add`` is never
split (a crash before a publish: tests/ledger/test_ledger_crash.py).
"""

from __future__ import annotations

import uuid

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from trackledger.ledger import Ledger, verify
from trackledger.ledger import segments as seg
from trackledger.ledger.events import BatchLogged, Event, Metric, RunCreated, keyed_event_id
from trackledger.ledger.schema import events_to_table, metrics_array
from trackledger.ledger.store import open_store

from tests.ledger.test_ledger_roundtrip import ANY_EVENTS

encode = msgspec.msgpack.encode


def unstamped(event: Event) -> bytes:
    return encode(msgspec.structs.replace(event, seq=0, ts=0, writer=""))


def points_apart(events: list[Event]) -> tuple[list[Event], dict]:
    """The events with each BatchLogged's metrics taken out and given as Arrow instead."""
    bare, points = [], {}
    for i, event in enumerate(events):
        if isinstance(event, BatchLogged) and event.metrics:
            points[i] = metrics_array(event.metrics)
            event = msgspec.structs.replace(event, metrics=[])
        bare.append(event)
    return bare, points


def batch(key: str, i: int, points: int) -> BatchLogged:
    metrics = [Metric("loss", 1 / (s + 1), 1_700_000_000_000 + s, s) for s in range(points)]
    return BatchLogged(id=keyed_event_id(key, i), run_id="r1", experiment_id="1", metrics=metrics)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=ANY_EVENTS)
def test_bulk_writes_what_the_wal_path_writes(tmp_path_factory, events):
    base = tmp_path_factory.mktemp("bulk")
    with Ledger(str(base / "wal-store"), str(base / "wal-state")) as ledger:
        ledger.append(events)
    with Ledger(str(base / "bulk-store"), str(base / "bulk-state")) as ledger, ledger.bulk() as bulk:
        assert bulk.add(*points_apart(events)) == len(events)
    read = {}
    for name in ("wal-store", "bulk-store"):
        store = open_store(str(base / name))
        read[name] = [unstamped(e) for p in seg.list_segments(store) for e in seg.read_events(store, p)]
        report = verify(str(base / name))
        assert report.ok, report
    assert read["bulk-store"] == read["wal-store"] == [unstamped(e) for e in events]


def test_points_given_as_arrow_make_the_same_rows_as_python_points():
    events = [
        RunCreated(
            id="a", run_id="r1", experiment_id="1", name="n", user_id="u", start_time=1, artifact_uri="a"
        ),
        batch("k", 0, 7),
        BatchLogged(id="b", run_id="r1", experiment_id="1", metrics=[Metric("x", 2.0, 5, 1)]),
        batch("k", 1, 3),
    ]
    bare, points = points_apart(events)
    assert set(points) == {1, 2, 3}
    assert events_to_table(bare, points).equals(events_to_table(events))


def test_ids_are_appended_once_whichever_path_had_them(tmp_path):
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        ledger.append([batch("run", 0, 2)])
        with ledger.bulk() as bulk:
            assert bulk.add(*points_apart([batch("run", 0, 2), batch("run", 1, 2)])) == 1
            assert bulk.add(*points_apart([batch("run", 1, 2), batch("run", 2, 2)])) == 1
            assert bulk.add([batch("run", 2, 2)]) == 0
        assert ledger.append([batch("run", 2, 2)]) == []
        ids = [e.id for e in ledger.read()]
    assert ids == [keyed_event_id("run", i) for i in range(3)]


def test_segments_roll_by_items_and_an_add_is_never_split(tmp_path, monkeypatch):
    monkeypatch.setattr("trackledger.ledger.bulk.ROW_GROUP_ITEMS", 10)
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        with ledger.bulk(segment_items=25) as bulk:
            for i in range(10):
                unit = [batch(f"unit-{i}", 0, 4), batch(f"unit-{i}", 1, 4)]
                assert bulk.add(*points_apart(unit)) == 2
        infos = ledger.segments()
        events = list(ledger.read())
    assert len(infos) > 2
    for info in infos:
        keys = [e.id for e in seg.read_events(ledger.store, info.path)]
        # Each add's two events are in the same segment.
        for unit in (f"unit-{i}" for i in range(10)):
            assert (keyed_event_id(unit, 0) in keys) == (keyed_event_id(unit, 1) in keys)
    assert [e.seq for e in events] == list(range(1, 21))
    assert verify(str(tmp_path / "store")).ok


def test_the_wal_takes_appends_again_after_a_bulk_writer(tmp_path):
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        ledger.append([batch("before", 0, 1)])
        with ledger.bulk() as bulk:
            with pytest.raises(RuntimeError, match="bulk writer is open"):
                ledger.append([batch("during", 0, 1)])
            bulk.add([batch("bulk", 0, 3)])
        after = ledger.append([batch("after", 0, 1)])
        assert after[0].seq == 3
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        assert [e.id for e in ledger.read()] == [
            keyed_event_id("before", 0),
            keyed_event_id("bulk", 0),
            keyed_event_id("after", 0),
        ]
    assert verify(str(tmp_path / "store")).ok


def test_an_id_twice_in_one_add_is_appended_once(tmp_path):
    fresh = [BatchLogged(id=str(uuid.uuid4()), run_id="r", experiment_id="1") for _ in range(3)]
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger, ledger.bulk() as bulk:
        assert bulk.add(fresh + fresh[:1]) == 3


def test_a_slow_trickle_is_published_by_age(tmp_path):
    """Few events, far from a full segment: each add finding the oldest unpublished one too old
    publishes, so a slow source's events do not wait for a size they may never reach."""
    with (
        Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger,
        ledger.bulk(segment_seconds=0) as bulk,
    ):
        for i in range(3):
            bulk.add([batch(f"slow-{i}", 0, 1)])
            assert [info.last_seq for info in ledger.segments()] == list(range(1, i + 2))
