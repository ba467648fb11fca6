"""The projection writer gathers what arrives and applies it in one transaction; a reader's
flush, and close, cut the gathering short so nothing waits for the delay."""

from __future__ import annotations

import threading

import duckdb
import pytest
from trackledger.ledger import events as E
from trackledger.projections import Projection
from trackledger.projections import projection as projection_module

from tests.projections.conftest import make

LONG = 60.0  # seconds: far longer than any test may take, so only a flush or close can end a wait


def experiment(n: int) -> E.Event:
    return make(
        E.ExperimentCreated, experiment_id=str(n), name=f"e{n}", artifact_location="a", creation_time=1
    )


def record_applies(projection: Projection) -> list[int]:
    """Sizes of the batches the writer applies, in order."""
    sizes: list[int] = []
    apply = projection._apply

    def recording(events):
        sizes.append(len(events))
        apply(events)

    projection._apply = recording
    return sizes


def in_thread(fn) -> None:
    """Run ``fn`` and fail if it is still blocked after 30 s (it would be waiting for LONG)."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "blocked until the gathering delay ran out"


def test_waiting_batches_are_applied_together_and_a_flush_ends_the_wait(ledger, projection, monkeypatch):
    monkeypatch.setattr(projection_module, "APPLY_DELAY_S", LONG)
    sizes = record_applies(projection)
    for n in range(1, 21):
        projection.submit(ledger.append([experiment(n)]))
    in_thread(projection.flush)
    assert sizes == [20]
    assert projection.read("SELECT count(*) FROM experiments") == [(20,)]


def test_a_batch_stops_gathering_at_the_point_cap(ledger, projection, monkeypatch):
    monkeypatch.setattr(projection_module, "APPLY_DELAY_S", LONG)
    monkeypatch.setattr(projection_module, "MAX_BATCH_POINTS", 1_000)
    sizes = record_applies(projection)
    projection.submit(ledger.append([experiment(1)]))
    run = make(
        E.RunCreated, experiment_id="1", run_id="r", name="r", user_id="u", start_time=1, artifact_uri="u"
    )
    projection.submit(ledger.append([run]))
    for batch in range(3):
        metrics = [E.Metric("m", 1.0, 1, batch * 600 + i) for i in range(600)]
        projection.submit(
            ledger.append([make(E.BatchLogged, experiment_id="1", run_id="r", metrics=metrics)])
        )
    in_thread(projection.flush)
    # 600 + 600 points reach the cap; the third batch starts the next transaction.
    assert sizes == [4, 1]
    assert projection.read("SELECT count(*) FROM metrics") == [(1_800,)]


def test_close_applies_what_is_gathered_without_waiting(ledger, tmp_path, monkeypatch):
    monkeypatch.setattr(projection_module, "APPLY_DELAY_S", LONG)
    path = tmp_path / "projection.duckdb"
    projection = Projection(ledger, path)
    projection.submit(ledger.append([experiment(1)]))
    in_thread(projection.close)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT name FROM experiments").fetchall() == [("e1",)]
        assert con.execute("SELECT last_seq FROM checkpoints").fetchall() == [(ledger.last_seq,)]


@pytest.mark.parametrize("flushes", [1, 8])
def test_every_flush_sees_the_batches_submitted_before_it(ledger, projection, monkeypatch, flushes):
    monkeypatch.setattr(projection_module, "APPLY_DELAY_S", LONG)
    seen: list[int] = []
    in_seq_order = threading.Lock()  # submit's contract, kept by the write service's lock

    def submit_then_read(n: int) -> None:
        with in_seq_order:
            projection.submit(ledger.append([experiment(n)]))
        projection.flush()
        seen.extend(
            row[0] for row in projection.read("SELECT count(*) FROM experiments WHERE name = ?", [f"e{n}"])
        )

    def all_threads() -> None:
        threads = [threading.Thread(target=submit_then_read, args=(n,)) for n in range(1, flushes + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    in_thread(all_threads)
    assert seen == [1] * flushes


def test_backlog_counts_events_and_points_until_applied(ledger, projection, monkeypatch):
    monkeypatch.setattr(projection_module, "APPLY_DELAY_S", LONG)
    projection.submit(ledger.append([experiment(1)]))
    run = make(
        E.RunCreated, experiment_id="1", run_id="r", name="r", user_id="u", start_time=1, artifact_uri="u"
    )
    metrics = [E.Metric("m", 1.0, 1, i) for i in range(10)]
    projection.submit(
        ledger.append([run, make(E.BatchLogged, experiment_id="1", run_id="r", metrics=metrics)])
    )
    assert projection.backlog == 1 + 2 + 10
    in_thread(lambda: projection.wait_backlog(0))
    assert projection.backlog == 0
    assert projection.read("SELECT count(*) FROM metrics") == [(10,)]
