"""What delivery has done, kept in ``<state dir>/webhooks.sqlite``: each webhook's cursor (the last
ledger seq it has dealt with) and its deliveries with every attempt. It is the deliverer's own
state, local to the server like the WAL, and survives restarts (SQLite, synchronous commits).

A delivery is ``pending`` (attempted, will be retried), ``delivered`` or ``failed`` (refused by
the receiver, or still failing after the maximum age). Each webhook keeps its newest
``KEEP_DELIVERIES`` deliveries.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from trackledger.api.webhooks.sender import Outcome

KEEP_DELIVERIES = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (webhook_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL,
    event TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, event_ts INTEGER NOT NULL,
    last_attempt_ts INTEGER, next_attempt_ts INTEGER, response_status INTEGER, latency_ms INTEGER,
    response_body TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS deliveries_of_webhook ON deliveries (webhook_id, seq);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, ts INTEGER NOT NULL, response_status INTEGER,
    latency_ms INTEGER, response_body TEXT, error TEXT, PRIMARY KEY (delivery_id, attempt));
"""
_DELIVERY_COLUMNS = (
    "delivery_id, webhook_id, seq, event_id, event, status, attempts, event_ts, last_attempt_ts, "
    "next_attempt_ts, response_status, latency_ms, response_body, error"
)


class DeliveryHistory:
    def __init__(self, path: str | Path):
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)

    def cursor(self, webhook_id: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT seq FROM cursors WHERE webhook_id = ?", [webhook_id]).fetchone()
        return row[0] if row else None

    def cursors(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT webhook_id, seq FROM cursors").fetchall())

    def move_cursor(self, webhook_id: str, seq: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO cursors VALUES (?, ?) ON CONFLICT DO UPDATE SET seq = max(seq, excluded.seq)",
                [webhook_id, seq],
            )

    def record(
        self,
        *,
        delivery_id: str,
        webhook_id: str,
        seq: int,
        event_id: str,
        event: str,
        event_ts: int,
        attempt_ts: int,
        outcome: Outcome,
        status: str,
        next_attempt_ts: int | None,
    ) -> None:
        """One attempt and the delivery's state after it, in one transaction."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                found = db.execute(
                    "SELECT attempts FROM deliveries WHERE delivery_id = ?", [delivery_id]
                ).fetchone()
                attempt = (found[0] if found else 0) + 1
                values = [
                    delivery_id,
                    webhook_id,
                    seq,
                    event_id,
                    event,
                    status,
                    attempt,
                    event_ts,
                    attempt_ts,
                    next_attempt_ts,
                    outcome.status,
                    outcome.latency_ms,
                    outcome.body,
                    outcome.error,
                ]
                db.execute(
                    f"INSERT OR REPLACE INTO deliveries ({_DELIVERY_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                    values,
                )
                db.execute(
                    "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        delivery_id,
                        attempt,
                        attempt_ts,
                        outcome.status,
                        outcome.latency_ms,
                        outcome.body,
                        outcome.error,
                    ],
                )
                if not found:
                    self._prune(webhook_id)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _prune(self, webhook_id: str) -> None:
        old = """SELECT delivery_id FROM deliveries WHERE webhook_id = ?
                 ORDER BY seq DESC, delivery_id DESC LIMIT -1 OFFSET ?"""
        gone = [r[0] for r in self._db.execute(old, [webhook_id, KEEP_DELIVERIES]).fetchall()]
        for delivery_id in gone:
            self._db.execute("DELETE FROM attempts WHERE delivery_id = ?", [delivery_id])
            self._db.execute("DELETE FROM deliveries WHERE delivery_id = ?", [delivery_id])

    def deliveries(self, webhook_id: str, limit: int, before_seq: int | None = None) -> list[dict]:
        """The webhook's newest deliveries (before ``before_seq``), newest first, with their attempts."""
        where, args = "webhook_id = ?", [webhook_id]
        if before_seq is not None:
            where, args = where + " AND seq < ?", [*args, before_seq]
        with self._lock:
            cur = self._db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE {where} "
                "ORDER BY seq DESC, delivery_id DESC LIMIT ?",
                [*args, limit],
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            for row in rows:
                cur = self._db.execute(
                    "SELECT attempt, ts, response_status, latency_ms, response_body, error FROM attempts "
                    "WHERE delivery_id = ? ORDER BY attempt",
                    [row["delivery_id"]],
                )
                names = [d[0] for d in cur.description]
                row["attempt_log"] = [dict(zip(names, a, strict=True)) for a in cur.fetchall()]
        return rows

    def forget(self, webhook_id: str) -> None:
        """A deleted webhook's cursor and history."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            db.execute(
                "DELETE FROM attempts WHERE delivery_id IN "
                "(SELECT delivery_id FROM deliveries WHERE webhook_id = ?)",
                [webhook_id],
            )
            db.execute("DELETE FROM deliveries WHERE webhook_id = ?", [webhook_id])
            db.execute("DELETE FROM cursors WHERE webhook_id = ?", [webhook_id])
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
