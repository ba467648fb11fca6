"""Metric points read ahead across pages of runs: each run gets its own chunks, in order, also runs
without points at a page's end or start; a source's error reaches the importer; closing stops a
reader blocked on a full queue. Then an import of a SQLite store in pages of two runs."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest
from trackledger.importer import driver, open_source
from trackledger.importer.driver import Importer, Options
from trackledger.importer.prefetch import PointsPrefetch
from trackledger.importer.records import SourceError, SourceRun
from trackledger.importer.target import StoreTarget
from trackledger.ledger import segments as seg
from trackledger.ledger.events import BatchLogged
from trackledger.ledger.store import open_store

from tests.importer.synthetic import generate


class ListedSource:
    """A source whose points are given per run (the Source protocol's ``metric_chunks`` only)."""

    def __init__(self, chunks: dict[str, list[str]], fail_at: str | None = None):
        self.chunks, self.fail_at = chunks, fail_at
        self.asked: list[list[str]] = []

    def metric_chunks(self, runs: list[SourceRun], size: int) -> Iterator[tuple[str, pa.StructArray]]:
        self.asked.append([r.run_id for r in runs])
        for run in runs:
            if run.run_id == self.fail_at:
                raise SourceError(f"run {run.run_id} cannot be read")
            for label in self.chunks.get(run.run_id, []):
                yield run.run_id, pa.array([label])


def run(run_id: str) -> SourceRun:
    return SourceRun(run_id, "1", run_id, "someone", "FINISHED", 0, None, "active", "")


def test_each_run_gets_its_chunks_across_pages_also_runs_without_points():
    source = ListedSource({"b": ["b0", "b1", "b2"], "d": ["d0"]})
    pages = [[run("a"), run("b")], [run("c")], [run("d"), run("e")]]
    with PointsPrefetch(source, chunk_points=10, chunks_ahead=2) as prefetch:
        for page in pages:  # all wanted before any is taken: the reader runs ahead
            prefetch.want(page)
        taken = {r.run_id: [c[0].as_py() for c in prefetch.of(r)] for page in pages for r in page}
    assert taken == {"a": [], "b": ["b0", "b1", "b2"], "c": [], "d": ["d0"], "e": []}
    assert source.asked == [["a", "b"], ["c"], ["d", "e"]]


def test_a_source_error_reaches_the_importer():
    source = ListedSource({"a": ["a0"]}, fail_at="b")
    with PointsPrefetch(source, chunk_points=10, chunks_ahead=2) as prefetch:
        prefetch.want([run("a"), run("b")])
        taken = []
        with pytest.raises(SourceError, match="run b cannot be read"):
            for r in (run("a"), run("b")):
                for chunk in prefetch.of(r):
                    taken.append(chunk[0].as_py())
    assert taken == ["a0"]


def test_closing_stops_a_reader_blocked_on_a_full_queue():
    source = ListedSource({"a": [f"a{i}" for i in range(100)]})
    prefetch = PointsPrefetch(source, chunk_points=10, chunks_ahead=1)
    prefetch.want([run("a")])
    time.sleep(0.2)  # the reading thread fills the queue and waits
    started = time.monotonic()
    prefetch.close()
    assert time.monotonic() - started < 5
    assert not any(t.name == prefetch._thread.name and t.is_alive() for t in threading.enumerate())


def test_once_closed_no_page_still_wanted_is_read():
    # A page wanted before the close but not begun: reading it would restart a source's reader
    # (SQLite's process) only to stop it.
    source = ListedSource({"b": ["b0"]})
    prefetch = PointsPrefetch(source, chunk_points=10, chunks_ahead=2)
    prefetch.close()
    prefetch._wanted.put([run("b")])
    prefetch._wanted.put(None)
    prefetch._read()  # as the reading thread would, had it not taken the close yet
    assert source.asked == []


def test_an_import_in_pages_of_two_runs_gives_every_run_its_points(tmp_path, monkeypatch):
    db = tmp_path / "mlruns.db"
    generate(db, runs=7, points_per_run=23, params=1, tags=1)
    with sqlite3.connect(db) as con:  # runs without points: first, in the middle, last
        ids = sorted(r for (r,) in con.execute("SELECT run_uuid FROM runs"))
        con.executemany("DELETE FROM metrics WHERE run_uuid = ?", [(ids[0],), (ids[3],), (ids[6],)])
        expected = {
            run_id: con.execute(
                "SELECT key, value, timestamp, step FROM metrics WHERE run_uuid = ? ORDER BY key, step",
                (run_id,),
            ).fetchall()
            for run_id in ids
        }
    monkeypatch.setattr(driver, "RUN_PAGE", 2)
    monkeypatch.setattr(driver, "METRIC_CHUNK", 5)
    monkeypatch.setattr(driver, "PREFETCH_CHUNKS", 2)
    store = tmp_path / "store"
    source, files = open_source(f"sqlite:///{db}", str(tmp_path / "artifacts"))
    target = StoreTarget(str(store), store / ".state", str(store / "artifacts"))
    try:
        report = Importer(source, files, target, Options()).run()
    finally:
        source.close()
        target.close()
    assert report.counts["runs"] == 7
    imported: dict[str, list] = {run_id: [] for run_id in ids}
    opened = open_store(str(store))
    for path in seg.list_segments(opened):
        for event in seg.read_events(opened, path):
            if isinstance(event, BatchLogged) and event.metrics:
                assert len(event.metrics) <= 5
                imported[event.run_id] += [(m.key, m.value, m.timestamp, m.step) for m in event.metrics]
    assert imported == expected
