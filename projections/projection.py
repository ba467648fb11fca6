"""The live projection: one DuckDB database, one writer thread, reads from any thread."""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import duckdb
import pyarrow as pa
from trackledger.ledger import Ledger
from trackledger.ledger.events import BatchLogged, Event
from trackledger.ledger.schema import events_to_table
from trackledger.projections import sandbox
from trackledger.projections.apply import STATEMENTS
from trackledger.projections.schema import TABLES, open_tables, reset_tables
from trackledger.projections.scope import shadow_tables
from trackledger.projections.sources import Progress, apply_table, catch_up

log = logging.getLogger(__name__)

# A DuckDB apply costs tens of ms however small its batch, so with no reader waiting the writer
# gathers what arrives for up to APPLY_DELAY_S and applies it as one batch; a reader's ``flush``
# cuts the wait short. Bounded so a reader never waits behind a huge transaction.
APPLY_DELAY_S = 0.5
MAX_BATCH_EVENTS = 5_000
MAX_BATCH_POINTS = 50_000

# What the tables mean: their columns and the statements deriving them. A projection file made by
# code with another digest is derived again from the ledger when opened, never read as it is.
DERIVATION_DIGEST = hashlib.sha256(repr((TABLES, [s.sql for s in STATEMENTS])).encode()).hexdigest()
T = TypeVar("T")
_STOP = object()
_FLUSH = object()  # put by ``flush``: apply what is queued now
# A batch that failed to apply (a full disk, say) is tried again after this long, doubling up to
# RETRY_MAX_S: the events are durable in the ledger, so the projection catches up once it can.
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


class ProjectionUnavailable(RuntimeError):
    """The projection cannot apply events now (e.g. its disk is full); ``reason`` says why,
    without server paths. It keeps trying, and reads that need the latest writes fail meanwhile."""

    def __init__(self, reason: str):
        super().__init__(f"the projection cannot apply events: {reason}")
        self.reason = reason


def failure_reason(exc: BaseException) -> str:
    """What went wrong, for a health check or an error answer: file paths reduced to their names."""
    return re.sub(r"(?<![\w.])/(?:[^\s\"':]*/)+([^\s\"'/:]+)", r"\1", str(exc)) or type(exc).__name__


class Projection:
    """DuckDB read models of a ledger, kept current by ``submit`` and rebuildable at any time.

    Writes go through one thread and one connection; each read uses a fresh cursor of the same
    database, so it sees every committed batch (``flush`` waits for what was submitted).
    """

    def __init__(self, ledger: Ledger, path: str | os.PathLike = ":memory:"):
        self.ledger = ledger
        self._db = duckdb.connect(str(path))
        # DuckDB keeps what its allocator freed until a task peaks past 128 MB; applying batches
        # and paging histories never do, so it returned nothing and the server's RSS kept ~20 MB
        # more. Flushing past 16 MB, and background threads for the rest, give it back.
        self._db.execute("SET allocator_flush_threshold = '16MB'")
        self._db.execute("SET allocator_background_threads = true")
        if open_tables(self._db, DERIVATION_DIGEST):
            log.warning("the projection %s was derived by another version: deriving it again", path)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._progress = threading.Condition()
        self._submitted = self._applied = 0
        self._backlog = 0  # items (events and their metric points) submitted, not yet applied
        self._error: BaseException | None = None  # the last apply failure, until an apply succeeds
        self._closing = threading.Event()
        catch_up(self._db, ledger.store, ledger.tail_table)
        self._writer = threading.Thread(target=self._write_loop, name="projection-writer", daemon=True)
        self._writer.start()

    # Writing ---------------------------------------------------------------------------

    def submit(self, events: list[Event]) -> None:
        """Queue stamped events (in seq order); the writer applies them once they are durable."""
        if not events:
            return
        items = len(events) + sum(len(e.metrics) for e in events if isinstance(e, BatchLogged))
        with self._progress:  # queued under the lock: a flush's marker lands after every batch it counts
            self._submitted += 1
            self._backlog += items
            self._queue.put((events, items))

    @property
    def backlog(self) -> int:
        """Events and metric points submitted but not applied yet."""
        return self._backlog

    @property
    def failure(self) -> str | None:
        """Why the projection cannot apply events now (it keeps trying), or None when it can."""
        error = self._error
        return None if error is None else failure_reason(error)

    def wait_backlog(self, at_most: int) -> None:
        """Block until the backlog is down to ``at_most`` items: writers call this to slow down
        when logging outruns the projection, so its queue (in memory) stays bounded."""
        with self._progress:
            if self._backlog > at_most:
                self._queue.put(_FLUSH)
            self._progress.wait_for(lambda: self._backlog <= at_most or self._error is not None)

    def flush(self) -> None:
        """Block until everything submitted so far is applied (read-your-writes)."""
        with self._progress:
            target = self._submitted
            if self._applied < target:
                self._queue.put(_FLUSH)
            self._progress.wait_for(lambda: self._applied >= target or self._error is not None)
            if self._error is not None:
                raise ProjectionUnavailable(failure_reason(self._error)) from self._error

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            batches, items, stopping = self._gather()
            if batches:
                self._apply_until_done([event for batch in batches for event in batch])
            with self._progress:
                self._applied += len(batches)
                self._backlog -= items
                self._progress.notify_all()
            # Not kept alive while the next gather waits: a batch can hold 50k metric points.
            del batches

    def _apply_until_done(self, events: list[Event]) -> None:
        """Apply, and after a failure try again (backing off) until it works or ``close`` is
        called: applying is idempotent (events at or below the checkpoint are skipped), and
        the ledger keeps the events, so a projection left behind catches up when next opened."""
        delay = RETRY_FIRST_S
        while True:
            try:
                self._apply(events)
            except Exception as exc:
                if self._error is None:
                    log.exception("applying events to the projection failed; trying again until it works")
                with self._progress:
                    self._error = exc
                    self._progress.notify_all()  # flushes waiting now fail instead of hanging
                if self._closing.wait(delay):
                    return
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self._error is not None:
                log.warning("the projection applies events again")
                self._error = None
            return

    def _gather(self) -> tuple[list[list[Event]], int, bool]:
        """The next batches to apply together, their items, and whether the projection is stopping.

        Waits for a first batch, then keeps gathering until a reader flushes, ``close`` is
        called, the batch is full or APPLY_DELAY_S has passed since the first batch arrived.
        """
        batches: list[list[Event]] = []
        events = items = 0
        deadline = None
        while events < MAX_BATCH_EVENTS and items - events < MAX_BATCH_POINTS:
            if deadline is None:
                entry = self._queue.get()
            else:
                try:
                    entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if entry is _STOP:
                return batches, items, True
            if entry is _FLUSH:
                if batches:
                    break
                continue
            batch, batch_items = entry
            batches.append(batch)
            events += len(batch)
            items += batch_items
            if deadline is None:
                deadline = time.monotonic() + APPLY_DELAY_S
        return batches, items, False

    def _apply(self, events: list[Event]) -> None:
        own = [e.seq for e in events if e.writer == self.ledger.writer]
        if own:
            self.ledger.wait_durable(max(own))
        apply_table(self._db, events_to_table(events))

    def rebuild(self, progress: Progress | None = None) -> None:
        """Drop every table and derive it again from the segments and the WAL tail."""
        self.flush()
        reset_tables(self._db, DERIVATION_DIGEST)
        catch_up(self._db, self.ledger.store, self.ledger.tail_table, progress=progress)

    def close(self) -> None:
        self._closing.set()
        if self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join()
        self._db.close()

    # Reading ---------------------------------------------------------------------------
    # Every read runs on a cursor of its own, closed when the read returns: nothing a read leaves
    # behind (an unfinished result, a failed transaction) can reach the next read on the thread.
    # Reads see every batch the writer has committed; call ``flush`` first for read-your-writes.

    def query(self, read: Callable[..., T], *args, **kwargs) -> T:
        """``read(cursor, *args, **kwargs)``: a read of the query modules (``runs``,
        ``experiments``, ``history``, ``logged_models``, ``registry``, ``search``), e.g.
        ``projection.query(runs.run, run_id)``, on a cursor of its own."""
        cursor = self._db.cursor()
        try:
            shadow_tables(cursor, TABLES)  # inside ``scope.reading_as``: only what it may see
            return read(cursor, *args, **kwargs)
        finally:
            cursor.close()

    def read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Rows of one trusted, parameterised SELECT over the projection tables.

        For the server's own code (the web pages); people's ad-hoc SQL goes to ``sql`` (the
        sandbox). Anything but a single SELECT raises ``ValueError``. Same visibility as the
        other reads: every committed batch (``flush`` first to see your own writes).
        """
        return self._read(sql, params)[1]

    def read_records(self, sql: str, params: Sequence = ()) -> list[dict]:
        """``read``, each row as a dict keyed by column name."""
        names, rows = self._read(sql, params)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _read(self, sql: str, params: Sequence) -> tuple[list[str], list[tuple]]:
        return self.query(_select, sql, params)

    def sql(self, query: str, limits: sandbox.SqlLimits = sandbox.DEFAULT_LIMITS, scope=None) -> pa.Table:
        """Run read-only ad-hoc SQL in the sandbox, within ``limits`` (see ``projections.sandbox``);
        with a ``Scope``, over only the rows it may see. Schema metadata ``truncated`` says whether
        a cap cut the answer short, and ``truncated_by`` which one (``rows`` or ``bytes``)."""
        answer = sandbox.ArrowAnswer()
        cut_by = self.sql_into(answer, query, limits, scope)
        metadata = {"truncated": "true" if cut_by else "false"} | ({"truncated_by": cut_by} if cut_by else {})
        return answer.table().replace_schema_metadata(metadata)

    def sql_into(
        self,
        answer: sandbox.Answer,
        query: str,
        limits: sandbox.SqlLimits = sandbox.DEFAULT_LIMITS,
        scope=None,
    ) -> str | None:
        """``sql``, its rows encoded by ``answer`` as they are read (the bytes cap counts the
        encoding); which cap cut the answer short, if one did."""
        return sandbox.run_sandboxed(self._db, query, answer, limits, scope)


def _select(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence) -> tuple[list[str], list[tuple]]:
    statements = con.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise ValueError("Projection.read takes exactly one SELECT statement")
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return names, cursor.fetchall()


def rebuild_file(ledger: Ledger, path: str | os.PathLike, progress: Progress | None = None) -> dict[str, int]:
    """Offline rebuild of a projection file (its server stopped): drop, create, re-derive."""
    con = duckdb.connect(str(path))
    try:
        reset_tables(con, DERIVATION_DIGEST)
        events = catch_up(con, ledger.store, ledger.tail_table, progress=progress)
        (points,) = con.execute("SELECT count(*) FROM metrics").fetchall()[0]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"events": events, "metrics": points}
