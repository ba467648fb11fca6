"""The write service: decides, stages, syncs and applies every write.

``commit(origin, decide, *args)`` under one lock: ``decide(index, envelope, *args)``, a function of
an entity module of this package, checks the request against the write index and returns its
events (or raises an MlflowError: nothing is written); the events are staged in the ledger (WAL
write, seq assignment), applied to the index and submitted to the projection, so the projection
sees them in seq order. The sync (``ledger.wait_durable``) runs outside the lock, shared by
concurrent requests (group commit).

``commit`` blocks; handlers await ``commit_off_loop``, which runs it in a thread. The hot paths
(run creation, log-metric/param/tag, log-batch) await ``commit_on_loop``, which decides and stages on
the event loop itself (no thread hop per call) and awaits a sync that runs in the WAL sync thread,
one at a time, each serving every write staged before it started: while the disk flushes, the loop
goes on reading, deciding and answering other requests. A write that needs a projection read to be
decided, or that finds the lock held, goes to the thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Callable

from trackledger.api.threads import blocking, wal_sync
from trackledger.api.writes import experiments
from trackledger.api.writes.envelope import Envelope, Origin
from trackledger.api.writes.write_index import NotInMemory, WriteIndex
from trackledger.ledger.events import Event

log = logging.getLogger("trackledger.writes")
# Writes are answered late (after the sync) while the projection is this many events and metric
# points behind: back-pressure on clients instead of an unbounded queue in memory.
MAX_PROJECTION_BACKLOG = 300_000

Decide = Callable[..., list[Event]]  # decide(index, envelope, *args, **kwargs) -> the request's events


class WriteService:
    def __init__(self, ledger, projection) -> None:
        self.ledger = ledger
        self.projection = projection
        self.index = WriteIndex(projection)
        self._lock = threading.Lock()
        self._loop_sync = _LoopSync(self)
        # Called with the events of each ``commit`` once durable, before the request is answered
        # (accounts reload on account events). ``commit_on_loop`` writes (runs, logging) call none.
        self.on_commit: list[Callable[[list[Event]], None]] = []
        projection.flush()
        self.index.load()
        if "0" not in self.index.experiments:
            self.commit(Origin(actor="trackledger"), experiments.create_default)

    def commit(self, origin: Origin, decide: Decide, *args, **kwargs) -> list[Event]:
        """Decide and stage under the lock, then wait for the sync; blocks.

        Returns the request's events; for a retry of a request already appended (the same
        Idempotency-Key), the events the first attempt appended, without deciding again: a retry
        gets the first attempt's answer, not a refusal of its now-stale checks.
        """
        stamped, wait_for = self._stage(origin, decide, args, kwargs)
        if stamped:
            self._wait_durable(wait_for)
            if self.projection.backlog > MAX_PROJECTION_BACKLOG:
                self.projection.wait_backlog(MAX_PROJECTION_BACKLOG)
            for hook in self.on_commit:
                hook(stamped)
        return stamped

    async def commit_off_loop(self, origin: Origin, decide: Decide, *args, **kwargs) -> list[Event]:
        return await blocking(self.commit, origin, decide, *args, **kwargs)

    async def commit_on_loop(self, origin: Origin, decide: Decide, *args, **kwargs) -> list[Event]:
        """``commit`` from the event loop: ``decide`` runs inline, from the index's memory only;
        the answer waits for a sync in the WAL sync thread, shared with the other writes staged
        before it starts (``_LoopSync``)."""
        staged = self._stage(origin, decide, args, kwargs, on_loop=True)
        if staged is None:
            return await self.commit_off_loop(origin, decide, *args, **kwargs)
        stamped, wait_for = staged
        if stamped and wait_for > self.ledger.durable_seq:
            await self._loop_sync.wait(wait_for)
        if stamped and self.projection.backlog > MAX_PROJECTION_BACKLOG:
            await blocking(self.projection.wait_backlog, MAX_PROJECTION_BACKLOG)
        return stamped

    def _stage(
        self, origin: Origin, decide: Decide, args: tuple, kwargs: dict, on_loop: bool = False
    ) -> tuple[list[Event], int] | None:
        """Decide and stage under the lock: the events and the seq to wait for. ``on_loop``: None
        instead of waiting, when the lock is held (a write off the loop may be waiting for DuckDB
        under it: the event loop must not stall behind it), when deciding needs a projection read,
        or when the request is a retry (finding its first attempt reads the ledger)."""
        if not self._lock.acquire(blocking=not on_loop):
            return None
        try:
            if self._is_retry(origin):
                if on_loop:
                    return None
                first = self._first_attempt(origin)
                return first, first[-1].seq
            self.index.in_memory_only = on_loop
            try:
                events = decide(self.index, Envelope(origin, self.index), *args, **kwargs)
            except NotInMemory:
                return None
            finally:
                self.index.in_memory_only = False
            if not events:
                return [], 0
            try:
                stamped = self.ledger.stage(events)
            except OSError:
                self._fatal("the write-ahead log could not be written")
                raise
            self.index.apply(stamped)
            if stamped:  # empty when the ledger already has every event id (a retry)
                self.projection.submit(stamped)
            return stamped, self.ledger.last_seq
        finally:
            self._lock.release()

    def _is_retry(self, origin: Origin) -> bool:
        event_id = origin.event_id(0)
        return event_id is not None and self.ledger.knows(event_id)

    def _first_attempt(self, origin: Origin) -> list[Event]:
        """The events a request with this Idempotency-Key appended (consecutive seqs, one frame)."""
        self.projection.flush()  # under the lock: every staged event is submitted, so it is found
        found = self.projection.read(
            "SELECT seq FROM events WHERE id = ? AND writer = ?", [origin.event_id(0), self.ledger.writer]
        )
        events: list[Event] = []
        for event in self.ledger.read(found[0][0] - 1):
            if event.id != origin.event_id(len(events)):
                break
            events.append(event)
        return events

    def _wait_durable(self, seq: int) -> None:
        try:
            self.ledger.wait_durable(seq)
        except Exception:
            self._fatal("the write-ahead log could not be synced")
            raise

    def _fatal(self, what: str) -> None:
        # Durability can no longer be promised: stop rather than acknowledge anything else.
        log.critical("%s; stopping the server so no unsynced write is acknowledged", what, exc_info=True)
        logging.shutdown()
        os._exit(70)


class _LoopSync:
    """Group commit for the writes staged on the event loop, synced off it. The first write staged
    while no sync is under way schedules one for after every handler ready in that loop iteration
    has staged; writes staged while a sync runs wait for the next one, started as soon as it ends.
    Each sync covers every write staged before it started, and only then are their requests
    answered (durable before acknowledged)."""

    def __init__(self, writes: WriteService) -> None:
        self._writes = writes
        self._waiters: list[tuple[int, asyncio.Future]] = []  # for the next sync
        self._syncing = False  # a sync is scheduled or running

    async def wait(self, seq: int) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiters.append((seq, future))
        if not self._syncing:
            self._syncing = True
            loop.call_soon(self._start, loop)
        await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        waiters, self._waiters = self._waiters, []
        seq = max(seq for seq, _future in waiters)
        synced = loop.run_in_executor(wal_sync, self._writes._wait_durable, seq)
        synced.add_done_callback(functools.partial(self._synced, loop, waiters))

    def _synced(self, loop: asyncio.AbstractEventLoop, waiters: list, synced: asyncio.Future) -> None:
        error = synced.exception()  # only if the server could not stop (see WriteService._fatal)
        for _seq, future in waiters:
            if future.done():  # cancelled: its client went away (its write is synced all the same)
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        if self._waiters:
            self._start(loop)
        else:
            self._syncing = False
