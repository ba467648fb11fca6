"""The write service: turns validated requests into events and makes them durable.

One lock covers validation against the in-memory index, ``ledger.stage`` (WAL write, seq
assignment), the index update and ``projection.submit``, so the projection sees events in seq
order. The sync (``ledger.wait_durable``) happens outside the lock, shared by concurrent
requests (group commit). ``commit`` blocks and runs off the event loop; the hot paths (run
creation, log-metric/param/tag, log-batch) use ``commit_on_loop``, which stages on the event
loop itself and shares one sync among the writes of a loop iteration: no thread hop per call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from trackledger.api.errors import invalid, not_found
from trackledger.api.index import LoggedModelEntry, WriteIndex
from trackledger.api.threads import blocking
from trackledger.ledger.events import (
    BatchLogged,
    Event,
    ExperimentCreated,
    Metric,
    Param,
    Tag,
    new_event_id,
)

log = logging.getLogger("trackledger.writes")
_IDEMPOTENCY_NS = uuid.UUID("6f1c1a52-5d0e-4a55-9d0c-7a6b8f2f4c11")
RUN_NAME_TAG = "mlflow.runName"
# Writes are answered late (after the sync) while the projection is this many events and metric
# points behind: back-pressure on clients instead of an unbounded queue in memory.
MAX_PROJECTION_BACKLOG = 300_000


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from. ``actor`` is a claim (e.g. a Basic-auth user name), never verified."""

    actor: str | None = None
    remote_addr: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None

    def derived_id(self, purpose: str) -> str | None:
        """A stable id for an entity created by this request, so a retried create is the same."""
        if not self.idempotency_key:
            return None
        return uuid.uuid5(_IDEMPOTENCY_NS, f"{self.idempotency_key}/{purpose}").hex

    def event_id(self, i: int) -> str | None:
        """The id of the request's i-th event when it carries an Idempotency-Key: a retry's events
        have the ids of the first attempt's, so the ledger appends them once."""
        if not self.idempotency_key:
            return None
        return str(uuid.uuid5(_IDEMPOTENCY_NS, f"{self.idempotency_key}#{i}"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class WriteService:
    def __init__(self, ledger, projection) -> None:
        self.ledger = ledger
        self.projection = projection
        self.index = WriteIndex()
        self._lock = threading.Lock()
        self._loop_sync = _LoopSync(self)
        projection.flush()
        self.index.load(projection)
        if "0" not in self.index.experiments:
            self.commit(Origin(actor="trackledger"), self._default_experiment)

    def _default_experiment(self, envelope) -> list[Event]:
        return [
            ExperimentCreated(
                **envelope(0, experiment_id="0"),
                name="Default",
                artifact_location="mlflow-artifacts:/0",
                creation_time=now_ms(),
            )
        ]

    # The commit protocol -------------------------------------------------------------

    def commit(self, origin: Origin, build: Callable[..., list[Event]]) -> list[Event]:
        """Validate and build events under the lock, stage them, then wait for the sync.

        ``build(envelope)`` raises MlflowError to refuse the request (nothing is written) or
        returns the events; ``envelope(i, **keys)`` gives the common fields of the i-th event.
        Returns the request's events; for a retry of a request already appended (the same
        Idempotency-Key), the events the first attempt appended, without building again: a retry
        gets the first attempt's answer, not a refusal of its now-stale checks.
        """
        stamped, wait_for = self._stage(origin, build)
        if stamped:
            self._wait_durable(wait_for)
            if self.projection.backlog > MAX_PROJECTION_BACKLOG:
                self.projection.wait_backlog(MAX_PROJECTION_BACKLOG)
        return stamped

    async def commit_on_loop(self, origin: Origin, build: Callable[..., list[Event]]) -> list[Event]:
        """``commit`` from the event loop: ``build`` runs inline, so it must not read DuckDB
        (see ``validates_in_memory``); the sync is shared by every write staged in this loop
        iteration and runs inline too, once they are all staged."""
        staged = self._stage(origin, build, on_loop=True)
        if staged is None:
            return await blocking(self.commit, origin, build)
        stamped, wait_for = staged
        if stamped and wait_for > self.ledger.durable_seq:
            await self._loop_sync.wait(wait_for)
        if stamped and self.projection.backlog > MAX_PROJECTION_BACKLOG:
            await blocking(self.projection.wait_backlog, MAX_PROJECTION_BACKLOG)
        return stamped

    def validates_in_memory(self, origin: Origin, run_id: str, with_params: bool) -> bool:
        """Whether a write to ``run_id`` can be validated without reading the projection: its
        logged params are cached (when params are logged) and its claimed actor is known."""
        run = self.index.runs.get(run_id)
        if run is None:
            return True  # refused from the index alone
        if with_params and run_id not in self.index.params:
            return False
        return origin.actor is not None or run.user is not None

    def _stage(
        self, origin: Origin, build: Callable[..., list[Event]], on_loop: bool = False
    ) -> tuple[list[Event], int] | None:
        """Build and stage under the lock: the events and the seq to wait for. ``on_loop``: None
        instead of waiting, when the lock is held (a write off the loop may be waiting for DuckDB
        under it: the event loop must not stall behind it) or the request is a retry (finding its
        first attempt reads the ledger)."""
        actor_cache: dict[str, str] = {}

        def envelope(i: int, **keys) -> dict:
            run_id = keys.get("run_id") or self.source_run(keys.get("model_id"))
            actor = origin.actor or self._claimed_actor(run_id, actor_cache)
            return {
                "id": origin.event_id(i) or new_event_id(),
                "actor": actor,
                "actor_verified": False,
                "remote_addr": origin.remote_addr,
                "user_agent": origin.user_agent,
                **keys,
            }

        if not self._lock.acquire(blocking=not on_loop):
            return None
        try:
            if self._is_retry(origin):
                if on_loop:
                    return None
                first = self._first_attempt(origin)
                return first, first[-1].seq
            events = build(envelope)
            if not events:
                return [], 0
            try:
                stamped = self.ledger.stage(events)
            except OSError:
                self._fatal("the write-ahead log could not be written")
                raise
            self.index.apply(stamped)
            if stamped:
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

    def logged_model(self, model_id: str) -> LoggedModelEntry | None:
        """What the write path knows of a logged model; one projection read the first time (under
        the lock, so after a flush every staged event is in it)."""
        entry = self.index.logged_models.get(model_id)
        if entry is None:
            self.projection.flush()
            model = self.projection.logged_model(model_id)
            if model is None:
                return None
            info = model["info"]
            entry = self.index.logged_models[model_id] = LoggedModelEntry(
                info["experiment_id"], info.get("source_run_id")
            )
        return entry

    def source_run(self, model_id: str | None) -> str | None:
        """The run that logged a model: a model's files are attributed to that run's user."""
        entry = self.logged_model(model_id) if model_id else None
        return entry.source_run_id if entry else None

    def _claimed_actor(self, run_id: str | None, cache: dict[str, str]) -> str:
        if not run_id:
            return "unknown"
        if run_id not in cache:
            run = self.index.runs.get(run_id)
            if run is not None and run.user is None:
                # Runs loaded at start-up: one narrow lookup, not a whole run read under the lock.
                found = self.projection.read("SELECT user_id FROM runs WHERE run_id = ?", [run_id])
                run.user = (found[0][0] if found else None) or "unknown"
            cache[run_id] = run.user if run is not None else "unknown"
        return cache[run_id]

    # Checks used by the build functions (called under the lock) ------------------------

    def active_run(self, run_id: str) -> str:
        """The run's experiment id; 404 if unknown, 400 if deleted (MLflow's messages)."""
        lifecycle = self.index.run_lifecycle(run_id)
        if lifecycle is None:
            raise not_found(f"Run with id={run_id} not found")
        if lifecycle != "active":
            raise invalid(f"The run {run_id} must be in the 'active' state. Current state is {lifecycle}.")
        return self.index.runs[run_id].experiment_id

    def known_run(self, run_id: str) -> str:
        run = self.index.runs.get(run_id)
        if run is None:
            raise not_found(f"Run with id={run_id} not found")
        return run.experiment_id

    def experiment(self, experiment_id: str):
        exp = self.index.experiments.get(experiment_id)
        if exp is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return exp

    def projection_has(self, table: str, **columns: str) -> bool:
        """Whether ``table`` has a row with these column values, counting every write staged so
        far: under the lock, everything staged is submitted, and the projection is flushed first."""
        self.projection.flush()
        where = " AND ".join(f"{column} = ?" for column in columns)
        found = self.projection.read(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1", list(columns.values()))
        return bool(found)

    def run_params(self, run_id: str) -> dict[str, str]:
        cached = self.index.params.get(run_id)
        if cached is None:
            self.projection.flush()
            cached = self.index.cache_params(run_id, dict(self.projection.params(run_id)))
        return cached

    # The hot path: log-metric, log-parameter, set-tag and log-batch ----------------------

    async def log_batch(
        self,
        origin: Origin,
        run_id: str,
        metrics: list[Metric] = (),
        params: list[Param] = (),
        tags: list[Tag] = (),
        single_param: bool = False,
    ) -> None:
        def build(envelope):
            experiment_id = self.active_run(run_id)
            new_params = self._new_params(run_id, params, single_param) if params else params
            if not (metrics or new_params or tags):
                return []
            # One call, one event: the projection keeps the run name in step with mlflow.runName.
            return [
                BatchLogged(
                    **envelope(0, experiment_id=experiment_id, run_id=run_id),
                    metrics=list(metrics),
                    params=list(new_params),
                    tags=list(tags),
                )
            ]

        if self.validates_in_memory(origin, run_id, bool(params)):
            await self.commit_on_loop(origin, build)
        else:
            await blocking(self.commit, origin, build)

    def _new_params(self, run_id: str, params, single: bool) -> list[Param]:
        """Params are immutable: the same value again is a no-op, another value is refused."""
        seen: dict[str, str] = {}
        for p in params:
            if p.key in seen:
                raise invalid(
                    f"Duplicate parameter keys have been submitted: {[p.key]}. Please ensure "
                    "the request contains only one param value per param key."
                )
            seen[p.key] = p.value
        logged = self.run_params(run_id)
        changed = [
            (p.key, logged[p.key], p.value) for p in params if p.key in logged and logged[p.key] != p.value
        ]
        if changed and single:
            key, old, new = changed[0]
            raise invalid(
                f"Changing param values is not allowed. Param with key='{key}' was already logged "
                f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
            )
        if changed:
            shown = [{"key": k, "old_value": o, "new_value": n} for k, o, n in changed]
            raise invalid(
                f"Changing param values is not allowed. Params were already logged='{shown}' "
                f"for run ID='{run_id}'."
            )
        return [p for p in params if p.key not in logged]


class _LoopSync:
    """Group commit on the event loop: the first write staged in a loop iteration schedules one
    sync after every handler ready in that iteration has staged, and it wakes them all."""

    def __init__(self, writes: WriteService) -> None:
        self._writes = writes
        self._waiters: list[tuple[int, asyncio.Future]] = []

    async def wait(self, seq: int) -> None:
        future = asyncio.get_running_loop().create_future()
        if not self._waiters:
            asyncio.get_running_loop().call_soon(self._sync)
        self._waiters.append((seq, future))
        await future

    def _sync(self) -> None:
        waiters, self._waiters = self._waiters, []
        self._writes._wait_durable(max(seq for seq, _future in waiters))
        for _seq, future in waiters:
            if not future.cancelled():
                future.set_result(None)
