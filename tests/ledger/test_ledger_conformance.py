"""One suite, three stores: memory://, a local directory (file://) and S3 (moto on loopback)."""

from __future__ import annotations

import threading
import time
import uuid

import duckdb
import msgspec
import pyarrow.parquet as pq
import pytest
from trackledger.ledger import Ledger, open_store, verify
from trackledger.ledger import ledger as ledger_module
from trackledger.ledger.events import BatchLogged, Metric, Param, RunCreated, RunUpdated, new_event_id


@pytest.fixture(params=["memory", "file", "s3"])
def store_spec(request, tmp_path):
    """(store URL, storage_options)."""
    if request.param == "memory":
        return f"memory://tl-{uuid.uuid4().hex[:8]}", None
    if request.param == "file":
        return f"file://{tmp_path / 'store'}", None
    bucket, options = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/ledger", options


def make_ledger(store_spec, state_dir, **kwargs) -> Ledger:
    url, options = store_spec
    return Ledger(url, state_dir, storage_options=options, **kwargs)


def run_events(n: int, run_id: str = "r1") -> list:
    return [
        BatchLogged(
            id=new_event_id(),
            run_id=run_id,
            metrics=[Metric("loss", i / 7, 1000 + i, i)],
            params=[Param(f"p{i}", str(i))],
        )
        for i in range(n)
    ]


def test_publish_is_create_only(store_spec):
    store = open_store(*store_spec)
    store.publish("segments/w/a.parquet", b"first")
    with pytest.raises(FileExistsError):
        store.publish("segments/w/a.parquet", b"second")
    assert store.read_bytes("segments/w/a.parquet") == b"first"
    assert store.find("segments", ".parquet") == ["segments/w/a.parquet"]


def test_concurrent_publish_of_one_name_has_one_winner(store_spec):
    store = open_store(*store_spec)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def publish(i: int) -> None:
        barrier.wait()
        try:
            store.publish("segments/w/race.parquet", f"writer {i}".encode())
            outcomes.append(f"writer {i}")
        except FileExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1
    assert store.read_bytes("segments/w/race.parquet").decode() == winners[0]


def test_append_roll_read_reopen(store_spec, tmp_path):
    state = tmp_path / "state"
    with make_ledger(store_spec, state) as ledger:
        first = ledger.append(
            [
                RunCreated(
                    id=new_event_id(), run_id="r1", name="n", user_id="u", start_time=1, artifact_uri="a"
                )
            ]
        )
        batch = ledger.append(run_events(10))
        assert [e.seq for e in first + batch] == list(range(1, 12))
        assert ledger.durable_seq == ledger.last_seq == 11
        info = ledger.roll()
        assert (info.first_seq, info.last_seq, info.count) == (1, 11, 11)
        assert ledger.roll() is None, "an empty WAL makes no segment"
        tail = ledger.append([RunUpdated(id=new_event_id(), run_id="r1", status="FINISHED")])
        assert ledger.tail_table().column("seq").to_pylist() == [12]
        assert [e.seq for e in ledger.read(after=10)] == [11, 12]
        writer = ledger.writer
    with make_ledger(store_spec, state) as ledger:
        assert ledger.writer == writer
        events = list(ledger.read())
        assert list(map(msgspec.msgpack.encode, events)) == list(
            map(msgspec.msgpack.encode, first + batch + tail)
        )
        infos = ledger.segments()
        assert [(s.first_seq, s.last_seq) for s in infos] == [(1, 11), (12, 12)]
        assert infos[1].prev_digest == infos[0].digest
    report = verify(*store_spec)
    assert report.ok, report.summary()
    assert report.writers[0].events == 12


def test_idempotent_re_append(store_spec, tmp_path):
    state = tmp_path / "state"
    events = run_events(3)
    with make_ledger(store_spec, state) as ledger:
        assert len(ledger.append(events)) == 3
        assert ledger.append(events) == []
        mixed = ledger.append([events[0], *run_events(1)])
        assert len(mixed) == 1 and mixed[0].id != events[0].id
        again = run_events(1)
        assert len(ledger.append(again + again)) == 1, "a duplicate inside one batch is appended once"
    with make_ledger(store_spec, state) as ledger:  # ids remembered from segments after a restart
        assert ledger.append(events) == []
        assert len(list(ledger.read())) == 5


def test_a_batch_with_a_bad_event_appends_nothing(store_spec, tmp_path):
    with make_ledger(store_spec, tmp_path / "state") as ledger:
        ledger.append(run_events(2))
        bad = BatchLogged(id=new_event_id(), metrics=[Metric("k", object(), 1)])  # cannot be encoded
        with pytest.raises(TypeError):
            ledger.append([*run_events(1), bad])
        assert ledger.last_seq == 2
        assert ledger.append(run_events(1))[0].seq == 3
        assert [e.seq for e in ledger.read()] == [1, 2, 3]


def test_rolls_by_size_not_per_request(store_spec, tmp_path):
    with make_ledger(store_spec, tmp_path / "state", roll_bytes=20_000) as ledger:
        for _ in range(300):
            ledger.append(run_events(1))
        ledger.roll()
        infos = ledger.segments()
    assert 2 <= len(infos) <= 20, f"{len(infos)} segments for 300 appends"
    assert sum(s.count for s in infos) == 300
    assert verify(*store_spec).ok


def test_a_big_wal_file_rolls_into_one_segment_of_several_row_groups(store_spec, tmp_path, monkeypatch):
    """The roller holds one chunk of events in memory at a time, not the whole WAL file."""
    monkeypatch.setattr(ledger_module, "ROLL_CHUNK_ITEMS", 100)
    appended = []
    with make_ledger(store_spec, tmp_path / "state") as ledger:
        for n in range(50):
            appended += ledger.append(
                [
                    BatchLogged(
                        id=new_event_id(),
                        run_id="r1",
                        metrics=[Metric("m", 1.0, 1, n * 10 + i) for i in range(9)],
                    )
                ]
            )
        info = ledger.roll()
        assert (info.first_seq, info.last_seq, info.count) == (1, 50, 50)
        with ledger.store.open(info.path) as f:
            assert pq.ParquetFile(f).num_row_groups == 5  # 10 events of 1 + 9 items each
        assert list(map(msgspec.msgpack.encode, ledger.read())) == list(map(msgspec.msgpack.encode, appended))
    assert verify(*store_spec).ok


def test_rolls_by_age(store_spec, tmp_path):
    with make_ledger(store_spec, tmp_path / "state", roll_seconds=0.2) as ledger:
        ledger.append(run_events(2))
        deadline = time.monotonic() + 60  # a bound on waiting, not a speed requirement
        while not ledger.segments() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(s.first_seq, s.last_seq) for s in ledger.segments()] == [(1, 2)]


def test_duckdb_reads_segments_through_the_store(store_spec, tmp_path):
    with make_ledger(store_spec, tmp_path / "state") as ledger:
        ledger.append(run_events(5))
        ledger.roll()
        ledger.append(run_events(2, run_id="r2"))
        store = ledger.store
    con = duckdb.connect()
    if not store.is_local:
        con.register_filesystem(store.fs)
    glob = store.url("segments") + "/**/*.parquet"
    rows = con.sql(
        f"SELECT run_id, count(*), sum(len(metrics)) FROM read_parquet('{glob}') GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows == [("r1", 5, 5), ("r2", 2, 2)]
