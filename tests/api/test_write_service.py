"""The write service in-process: hot-path writes staged on the event loop share one sync, run off
the loop (which goes on answering meanwhile), and writes that need the projection to validate take
the thread path."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from trackledger.api.errors import MlflowError
from trackledger.api.writes import run_logging
from trackledger.api.writes import service as write_service
from trackledger.api.writes.envelope import Origin
from trackledger.api.writes.service import WriteService
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.projections import Projection
from trackledger.projections import projection as projection_module
from trackledger.projections import runs as run_reads

from tests.api.conftest import API, in_process


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
    def decide(index, envelope):
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

    writes.commit(Origin(), decide)


async def log(writes: WriteService, origin: Origin, **logged) -> None:
    """What log-metric, log-parameter, set-tag and log-batch do to run r1."""
    await writes.commit_on_loop(origin, run_logging.log_batch, "r1", **logged)


def in_memory(writes: WriteService, origin: Origin, with_params: bool) -> bool:
    """Whether a write to r1 is decided from memory, on the event loop: its params are cached
    (when params are logged) and its events' actor is known without a projection read."""
    run = writes.index.runs["r1"]
    return (not with_params or "r1" in writes.index.params) and (
        origin.actor is not None or run.user is not None
    )


def count_syncs(writes: WriteService, monkeypatch) -> list[int]:
    calls: list[int] = []
    wait_durable = writes.ledger.wait_durable

    def counting(seq: int) -> None:
        calls.append(seq)
        wait_durable(seq)

    monkeypatch.setattr(writes.ledger, "wait_durable", counting)
    return calls


class HeldSync:
    """``os.fdatasync`` that counts its calls and holds the first one until ``release`` (10 s at
    most: where the sync blocks the event loop, the test fails instead of hanging)."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        self.entered, self.released = threading.Event(), threading.Event()
        self._fdatasync = os.fdatasync
        monkeypatch.setattr(os, "fdatasync", self)

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            self.released.wait(10)
        self._fdatasync(fd)

    def release(self) -> None:
        self.released.set()


async def until(predicate, what: str) -> None:
    """Let the loop turn until ``predicate()`` holds (bounded: fails rather than hangs)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_concurrent_log_calls_on_the_loop_share_one_sync(service, monkeypatch):
    create_run(service)
    syncs = count_syncs(service, monkeypatch)

    async def twenty_clients():
        await asyncio.gather(
            *(log(service, Origin(), metrics=[E.Metric("m", float(i), 1, i)]) for i in range(20))
        )

    asyncio.run(twenty_clients())
    assert syncs == [service.ledger.last_seq]
    assert service.ledger.durable_seq == service.ledger.last_seq
    service.projection.flush()
    assert service.projection.read("SELECT count(*), sum(step) FROM metrics") == [(20, sum(range(20)))]
    actors = service.projection.read("SELECT DISTINCT actor FROM events WHERE type = 'batch_logged'")
    assert actors == [("alice",)]


def test_the_event_loop_goes_on_while_a_write_is_synced(service, monkeypatch):
    """The sync runs off the loop: while the disk flushes, the loop turns (other requests are read
    and answered), and the write is answered only once its sync is done."""
    create_run(service)
    held = HeldSync(monkeypatch)

    async def log_while_syncing() -> int:
        write = asyncio.ensure_future(log(service, Origin(), metrics=[E.Metric("m", 1.0, 1, 0)]))
        await until(held.entered.is_set, "the sync started")
        ticks = 0
        while not write.done() and ticks < 20:
            await asyncio.sleep(0.01)  # the loop keeps turning while the sync is held
            ticks += 1
        assert not write.done()
        assert service.ledger.durable_seq < service.ledger.last_seq  # staged, not yet durable
        held.release()
        await write
        return ticks

    assert asyncio.run(log_while_syncing()) == 20
    assert service.ledger.durable_seq == service.ledger.last_seq
    service.projection.flush()
    assert service.projection.read("SELECT count(*) FROM metrics") == [(1,)]


def test_writes_staged_during_a_sync_share_the_next_one(service, monkeypatch):
    """Group commit with the sync off the loop: the writes staged while one sync runs wait for the
    next, one sync for all of them, and none is answered before its own sync is done."""
    create_run(service)
    held = HeldSync(monkeypatch)

    async def ten_writes_during_a_sync() -> None:
        first = asyncio.ensure_future(log(service, Origin(), metrics=[E.Metric("m", 0.0, 1, 0)]))
        await until(held.entered.is_set, "the first sync started")
        staged = service.ledger.last_seq
        later = [
            asyncio.ensure_future(log(service, Origin(), metrics=[E.Metric("m", float(i), 1, i)]))
            for i in range(1, 11)
        ]
        await until(lambda: service.ledger.last_seq == staged + 10, "the ten writes staged")
        assert not first.done() and not any(write.done() for write in later)
        assert service.ledger.durable_seq < staged
        held.release()
        await asyncio.gather(first, *later)

    asyncio.run(ten_writes_during_a_sync())
    assert held.calls == 2
    assert service.ledger.durable_seq == service.ledger.last_seq
    service.projection.flush()
    assert service.projection.read("SELECT count(*), sum(step) FROM metrics") == [(11, sum(range(11)))]


def test_the_server_answers_other_requests_while_a_write_is_synced(tmp_path, monkeypatch):
    """Over the app: a log-metric whose sync is held is not answered, while a health check and a
    refused write (an unknown run) are; once the sync is done, the log-metric is answered 200."""
    with in_process(tmp_path / "store") as client:
        experiment_id = client.post(f"{API}/experiments/create", json={"name": "e"}).json()["experiment_id"]
        created = client.post(f"{API}/runs/create", json={"experiment_id": experiment_id})
        run_id = created.json()["run"]["info"]["run_id"]
        held = HeldSync(monkeypatch)
        answered: list[int] = []
        body = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
        logging_thread = threading.Thread(
            target=lambda: answered.append(client.post(f"{API}/runs/log-metric", json=body).status_code)
        )
        logging_thread.start()
        assert held.entered.wait(10)
        assert client.get("/health").text == "OK"
        unknown = {**body, "run_id": "0" * 32}
        assert client.post(f"{API}/runs/log-metric", json=unknown).status_code == 404
        assert answered == []  # still syncing: not acknowledged
        held.release()
        logging_thread.join(30)
        assert answered == [200]
        history = client.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
        assert [point["value"] for point in history.json()["metrics"]] == [1.0]


def test_a_run_loaded_at_start_up_is_validated_from_the_projection(service):
    create_run(service)
    asyncio.run(log(service, Origin(), params=[E.Param("lr", "0.1")]))
    writes = service.restart()
    # Neither its params nor its user are in memory after a restart: the thread path reads them.
    assert not in_memory(writes, Origin(), with_params=True)
    assert not in_memory(writes, Origin(), with_params=False)
    assert in_memory(writes, Origin(actor="bob"), with_params=False)
    with pytest.raises(MlflowError, match="Changing param values is not allowed"):
        asyncio.run(log(writes, Origin(), params=[E.Param("lr", "0.2")], single_param=True))
    asyncio.run(log(writes, Origin(), metrics=[E.Metric("m", 1.0, 1, 0)]))
    writes.projection.flush()
    rows = writes.projection.read("SELECT actor FROM events WHERE type = 'batch_logged' ORDER BY seq")
    assert rows == [("alice",), ("alice",)]
    assert in_memory(writes, Origin(), with_params=True)


def test_a_write_is_answered_only_once_the_projection_backlog_is_bounded(service, monkeypatch):
    monkeypatch.setattr(projection_module, "APPLY_DELAY_S", 60.0)  # only back-pressure can apply it
    monkeypatch.setattr(write_service, "MAX_PROJECTION_BACKLOG", 5)
    create_run(service)
    service.projection.flush()
    metrics = [E.Metric("m", 1.0, 1, i) for i in range(10)]
    asyncio.run(log(service, Origin(), metrics=metrics))
    assert service.projection.backlog <= 5
    service.commit(Origin(), lambda index, envelope: [E.RunTagDeleted(**envelope(0, run_id="r1"), key="x")])
    assert service.projection.backlog <= 5
    assert service.projection.read("SELECT count(*) FROM metrics") == [(10,)]


def test_the_event_loop_never_waits_for_the_write_lock(service):
    """A write off the loop may hold the lock while it waits for DuckDB (a delete-tag flushes the
    projection): a hot-path write on the loop then goes to a thread instead of stalling the loop."""
    create_run(service)
    holding, release = threading.Event(), threading.Event()

    def slow_decide(index, envelope):
        holding.set()
        release.wait(10)
        return [E.RunTagDeleted(**envelope(0, run_id="r1"), key="x")]

    holder = threading.Thread(target=service.commit, args=(Origin(), slow_decide))
    holder.start()
    holding.wait(10)

    async def log_while_held() -> int:
        ticks = 0
        write = asyncio.ensure_future(log(service, Origin(), metrics=[E.Metric("m", 1.0, 1, 0)]))
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


def test_a_write_that_needs_the_projection_is_decided_in_a_thread(service, monkeypatch):
    """On the event loop, deciding reads memory only: a write whose run's params or user must be
    read from the projection is decided again in a thread, and still stages once."""
    create_run(service)
    asyncio.run(log(service, Origin(), params=[E.Param("lr", "0.1")]))
    writes = service.restart()
    in_threads: list[bool] = []
    commit = writes.commit

    def recording(*args, **kwargs):
        in_threads.append(threading.current_thread() is not threading.main_thread())
        return commit(*args, **kwargs)

    monkeypatch.setattr(writes, "commit", recording)
    asyncio.run(log(writes, Origin(actor="bob"), metrics=[E.Metric("m", 1.0, 1, 0)]))
    assert in_threads == []  # the actor is claimed and no params are logged: decided on the loop
    asyncio.run(log(writes, Origin(), params=[E.Param("lr", "0.1"), E.Param("wd", "0")]))
    assert in_threads == [True]
    asyncio.run(log(writes, Origin(), params=[E.Param("bs", "8")]))
    assert in_threads == [True]  # now in memory
    writes.projection.flush()
    rows = writes.projection.read("SELECT actor, count(*) FROM events WHERE type = 'batch_logged' GROUP BY 1")
    assert sorted(rows) == [("alice", 3), ("bob", 1)]
    assert dict(writes.projection.query(run_reads.params, "r1")) == {"lr": "0.1", "wd": "0", "bs": "8"}
