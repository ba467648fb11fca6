"""The write service in-process: hot-path writes staged on the event loop share one sync, and
writes that need the projection to validate take the thread path."""

from __future__ import annotations

import asyncio
import threading

import pytest
from trackledger.api import tracking
from trackledger.api.errors import MlflowError
from trackledger.api.tracking import Origin, WriteService
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.projections import Projection
from trackledger.projections import projection as projection_module


@pytest.fixture
def service(tmp_path):
    """A write service over a real ledger and projection; ``restart()`` reopens both."""
    opened = []

    def open_service() -> WriteService:
        ledger = Ledger(tmp_path / "store", tmp_path / "state")
        projection = Projection(ledger, tmp_path / "state" / "projections.duckdb")
        opened.append((ledger, projection))
        return WriteService(ledger, projection)

    def restart() -> WriteService:
        ledger, projection = opened[-1]
        projection.flush()
        projection.close()
        ledger.close()
        return open_service()

    writes = open_service()
    writes.restart = restart
    yield writes
    ledger, projection = opened[-1]
    projection.close()
    ledger.close()


def create_run(writes: WriteService, run_id: str = "r1") -> None:
    def build(envelope):
        return [
            E.RunCreated(
                **envelope(0, experiment_id="0", run_id=run_id),
                name="run",
                user_id="alice",
                start_time=1,
                artifact_uri="x",
                tags=[E.Tag("mlflow.user", "alice")],
            )
        ]

    writes.commit(Origin(), build)


def count_syncs(writes: WriteService, monkeypatch) -> list[int]:
    calls: list[int] = []
    wait_durable = writes.ledger.wait_durable

    def counting(seq: int) -> None:
        calls.append(seq)
        wait_durable(seq)

    monkeypatch.setattr(writes.ledger, "wait_durable", counting)
    return calls


def test_concurrent_log_calls_on_the_loop_share_one_sync(service, monkeypatch):
    create_run(service)
    syncs = count_syncs(service, monkeypatch)

    async def twenty_clients():
        await asyncio.gather(
            *(service.log_batch(Origin(), "r1", metrics=[E.Metric("m", float(i), 1, i)]) for i in range(20))
        )

    asyncio.run(twenty_clients())
    assert syncs == [service.ledger.last_seq]
    assert service.ledger.durable_seq == service.ledger.last_seq
    service.projection.flush()
    assert service.projection.read("SELECT count(*), sum(step) FROM metrics") == [(20, sum(range(20)))]
    actors = service.projection.read("SELECT DISTINCT actor FROM events WHERE type = 'batch_logged'")
    assert actors == [("alice",)]


def test_a_run_loaded_at_start_up_is_validated_from_the_projection(service):
    create_run(service)
    asyncio.run(service.log_batch(Origin(), "r1", params=[E.Param("lr", "0.1")]))
    writes = service.restart()
    # Neither its params nor its user are in memory after a restart: the thread path reads them.
    assert not writes.validates_in_memory(Origin(), "r1", with_params=True)
    assert not writes.validates_in_memory(Origin(), "r1", with_params=False)
    assert writes.validates_in_memory(Origin(actor="bob"), "r1", with_params=False)
    with pytest.raises(MlflowError, match="Changing param values is not allowed"):
        asyncio.run(writes.log_batch(Origin(), "r1", params=[E.Param("lr", "0.2")], single_param=True))
    asyncio.run(writes.log_batch(Origin(), "r1", metrics=[E.Metric("m", 1.0, 1, 0)]))
    writes.projection.flush()
    rows = writes.projection.read("SELECT actor FROM events WHERE type = 'batch_logged' ORDER BY seq")
    assert rows == [("alice",), ("alice",)]
    assert writes.validates_in_memory(Origin(), "r1", with_params=True)


def test_a_write_is_answered_only_once_the_projection_backlog_is_bounded(service, monkeypatch):
    monkeypatch.setattr(projection_module, "APPLY_DELAY_S", 60.0)  # only back-pressure can apply it
    monkeypatch.setattr(tracking, "MAX_PROJECTION_BACKLOG", 5)
    create_run(service)
    service.projection.flush()
    metrics = [E.Metric("m", 1.0, 1, i) for i in range(10)]
    asyncio.run(service.log_batch(Origin(), "r1", metrics=metrics))
    assert service.projection.backlog <= 5
    service.commit(Origin(), lambda envelope: [E.RunTagDeleted(**envelope(0, run_id="r1"), key="x")])
    assert service.projection.backlog <= 5
    assert service.projection.read("SELECT count(*) FROM metrics") == [(10,)]


def test_the_event_loop_never_waits_for_the_write_lock(service):
    """A write off the loop may hold the lock while it waits for DuckDB (a delete-tag flushes the
    projection): a hot-path write on the loop then goes to a thread instead of stalling the loop."""
    create_run(service)
    holding, release = threading.Event(), threading.Event()

    def slow_build(envelope):
        holding.set()
        release.wait(10)
        return [E.RunTagDeleted(**envelope(0, run_id="r1"), key="x")]

    holder = threading.Thread(target=service.commit, args=(Origin(), slow_build))
    holder.start()
    holding.wait(10)

    async def log_while_held() -> int:
        ticks = 0
        write = asyncio.ensure_future(service.log_batch(Origin(), "r1", metrics=[E.Metric("m", 1.0, 1, 0)]))
        while not write.done() and ticks < 20:
            await asyncio.sleep(0.01)  # the loop keeps turning while the lock is held
            ticks += 1
        release.set()
        await write
        return ticks

    assert asyncio.run(log_while_held()) == 20
    holder.join(10)
    service.projection.flush()
    assert service.projection.read("SELECT count(*) FROM metrics") == [(1,)]
