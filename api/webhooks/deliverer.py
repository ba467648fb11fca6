"""Delivery from the ledger: one worker thread per webhook, each following the ledger from its
durable cursor, so a slow or dead receiver holds back only its own webhook, and the write path
never waits for any of them. The workers read the ledger through one ``SharedFeed``, which decodes
each event once for all of them (a worker that falls behind it reads the ledger on its own).

Per webhook, events are delivered in ledger order, at least once: the cursor moves past an event
only once its deliveries are done (delivered, or failed for good), so after a restart or a kill -9
the worker sends again what it had not finished, under the same delivery id (derived from the
webhook id, the event id and the notification's place in the event). A failed attempt is retried
with exponential backoff and jitter, or after the receiver's ``Retry-After`` if longer, until the
event is ``max_age_s`` old: then the delivery is marked failed and the worker moves on.

Imported history (``trackledger import``) is never delivered: it happened elsewhere, earlier.
Which events a webhook hears (its kinds, filters and status) follows its updates in ledger order:
an event that lands while a webhook is disabled is never delivered. Where it is sent (URL, secret)
is always its current setting, so a corrected URL also serves the retries of an earlier event.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from trackledger.api.sealing import Sealer, SealError
from trackledger.api.webhooks.catalog import TAG_KINDS, example
from trackledger.api.webhooks.feed import BATCH_EVENTS, Item, SharedFeed, items_of
from trackledger.api.webhooks.history import DeliveryHistory
from trackledger.api.webhooks.sender import Outcome, Sender, signed_headers
from trackledger.ledger.events import Event, WebhookDeleted, WebhookUpdated
from trackledger.ledger.follow import Follower

log = logging.getLogger("trackledger.webhooks")
_DELIVERY_NS = uuid.UUID("3b8f2a7e-4c61-4f0e-9a55-0d2c8e9b7a14")
RETRY_BASE_S = 1.0
# How often a worker saves the cursor it moved past events it had nothing to send for (synced
# SQLite commits; every worker wakes at each batch the feed reads). A delivery saves it at once.
CURSOR_SAVE_S = 2.0
WAIT_S = 1.0  # the longest a worker waits for news before looking again (the feed wakes it sooner)
# A receiver may refuse an event for good: a 4xx other than these is not retried.
RETRYABLE_4XX = {408, 409, 425, 429}


@dataclass(frozen=True)
class DeliveryPolicy:
    max_age_s: float = 24 * 3600.0
    retry_max_s: float = 600.0
    poll_s: float = 0.05  # the shared feed's: one thread, and idle it only compares two seqs


@dataclass(frozen=True)
class Hearing:
    """What a webhook hears, as of a point in the ledger."""

    kinds: frozenset[str]
    active: bool
    experiment_ids: frozenset[str] = frozenset()
    tag_key: str | None = None

    def hears(self, kind: str, event: Event, data: dict) -> bool:
        if not self.active or kind not in self.kinds:
            return False
        if self.experiment_ids and event.experiment_id not in self.experiment_ids:
            return False
        return not (self.tag_key and kind in TAG_KINDS and data.get("key") != self.tag_key)

    def updated(self, event: WebhookUpdated) -> Hearing:
        changes: dict = {}
        if event.webhook_events is not None:
            changes["kinds"] = frozenset(event.webhook_events)
        if event.status is not None:
            changes["active"] = event.status == "ACTIVE"
        if event.filter_experiment_ids is not None:
            changes["experiment_ids"] = frozenset(event.filter_experiment_ids)
        if event.filter_tag_key is not None:
            changes["tag_key"] = event.filter_tag_key or None
        return replace(self, **changes)

    @classmethod
    def of(cls, row: dict) -> Hearing:
        return cls(
            frozenset(row["events"]),
            row["status"] == "ACTIVE",
            frozenset(row["filter_experiment_ids"] or ()),
            row["filter_tag_key"],
        )


@dataclass(frozen=True)
class Target:
    """Where and how a webhook's deliveries are sent: its current URL and sealed secret."""

    url: str
    secret_sealed: str | None = None


def delivery_id(webhook_id: str, event_id: str, index: int) -> str:
    return str(uuid.uuid5(_DELIVERY_NS, f"{webhook_id}/{event_id}/{index}"))


def payload(kind: str, timestamp_ms: int, data: dict) -> str:
    """MLflow's payload: ``{"entity", "action", "timestamp" (ISO 8601, UTC), "data"}``."""
    entity, action = kind.split(".")
    when = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat()
    return json.dumps({"entity": entity, "action": action, "timestamp": when, "data": data})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Deliverer:
    def __init__(self, ledger, projection, sealer: Sealer, history: DeliveryHistory, sender: Sender, policy):
        self.ledger = ledger
        self.projection = projection
        self.sealer = sealer
        self.history = history
        self.sender = sender
        self.policy = policy
        self.feed: SharedFeed | None = None  # started with the first workers, at the oldest cursor
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._closed = False

    def webhooks(self) -> list[dict]:
        self.projection.flush()
        return self.projection.read_records("SELECT * FROM webhooks ORDER BY creation_timestamp, webhook_id")

    def refresh(self) -> None:
        """Start a worker for each new webhook, give the others their current target, stop the
        workers of deleted ones. Called at start and after every change to a webhook."""
        rows = {row["webhook_id"]: row for row in self.webhooks()}
        cursors = self.history.cursors()
        with self._lock:
            if self._closed:
                return
            if self.feed is None:
                starts = [cursors.get(webhook_id, row["created_seq"]) for webhook_id, row in rows.items()]
                after = min(starts, default=self.ledger.durable_seq)
                self.feed = SharedFeed(self.ledger, self.policy.poll_s, after)
            for webhook_id, row in rows.items():
                target = Target(row["url"], row["secret_sealed"])
                worker = self._workers.get(webhook_id)
                if worker is None:
                    cursor = cursors.get(webhook_id, row["created_seq"])
                    worker = self._workers[webhook_id] = _Worker(
                        self, webhook_id, Hearing.of(row), target, cursor
                    )
                    worker.start()
                else:
                    worker.target = target
            for webhook_id in [w for w in self._workers if w not in rows]:
                self._workers.pop(webhook_id).stop()
        for webhook_id in cursors.keys() - rows.keys():
            self.history.forget(webhook_id)

    def forget(self, webhook_id: str) -> None:
        with self._lock:
            self._workers.pop(webhook_id, None)
        self.history.forget(webhook_id)

    def open_secret(self, sealed: str | None) -> str | None:
        return self.sealer.open(sealed) if sealed else None

    def test(self, row: dict, kind: str) -> Outcome:
        """One delivery of an example payload of ``kind``, now, recorded nowhere (``test_webhook``)."""
        body = payload(kind, now_ms(), example(kind))
        try:
            secret = self.open_secret(row["secret_sealed"])
        except SealError as exc:
            return Outcome(error=str(exc))
        return self.sender.post(row["url"], body, signed_headers(str(uuid.uuid4()), body, secret))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()
        if self.feed is not None:
            self.feed.stop()
        for worker in workers:
            worker.join(timeout=2)
        if self.feed is not None:
            self.feed.join(timeout=2)
        self.sender.close()
        self.history.close()


class _Worker(threading.Thread):
    def __init__(self, deliverer: Deliverer, webhook_id: str, hearing: Hearing, target: Target, cursor: int):
        super().__init__(name=f"webhook-{webhook_id}", daemon=True)
        self.deliverer = deliverer
        self.webhook_id = webhook_id
        self.hearing = hearing
        self.target = target
        self.cursor = cursor
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        d = self.deliverer
        own: Follower | None = None  # reading the ledger itself, while behind the shared feed
        saved, saved_at = self.cursor, time.monotonic()
        while not self._stopped.is_set():
            if own is None:
                read = d.feed.read(self.cursor, WAIT_S)
                if read is None:
                    own = Follower(d.ledger, self.cursor)
                    continue
                items, position = read
            else:
                try:
                    events = own.poll(BATCH_EVENTS)
                except Exception:  # a read racing a roll, a store hiccup: start again from the cursor
                    log.exception("webhook %s: reading the ledger failed; retrying", self.webhook_id)
                    own = None
                    self._stopped.wait(1.0)
                    continue
                if not events:  # at the end of the ledger: the shared feed has it
                    own = None
                    continue
                items, position = items_of(events), events[-1].seq
            for item in items:
                if not self._handle(item):
                    return
                self.cursor = item.event.seq
            self.cursor = max(self.cursor, position)
            if self.cursor != saved and time.monotonic() >= saved_at + CURSOR_SAVE_S:
                d.history.move_cursor(self.webhook_id, self.cursor)
                saved, saved_at = self.cursor, time.monotonic()
            if own is not None and d.feed.read(self.cursor, 0) is not None:
                own = None  # back within the shared feed

    def _handle(self, item: Item) -> bool:
        """Deal with one event; False when the worker must stop before moving past it."""
        event = item.event
        if isinstance(event, WebhookUpdated | WebhookDeleted):
            if event.webhook_id != self.webhook_id:
                return True
            if isinstance(event, WebhookDeleted):
                self.deliverer.forget(self.webhook_id)
                return False
            self.hearing = self.hearing.updated(event)
            return True
        if not self.hearing.active:
            return True
        delivered = False
        for index, (kind, data) in enumerate(item.notes):
            if self.hearing.hears(kind, event, data):
                if not self._deliver(event, index, kind, data):
                    return False
                delivered = True
        if delivered:
            self.deliverer.history.move_cursor(self.webhook_id, event.seq)
        return True

    def _deliver(self, event: Event, index: int, kind: str, data: dict) -> bool:
        """Send until delivered or failed for good; False if the worker was stopped meanwhile."""
        d = self.deliverer
        policy = d.policy
        the_id = delivery_id(self.webhook_id, event.id, index)
        body = payload(kind, event.ts, data)
        deadline_ms = event.ts + int(policy.max_age_s * 1000)
        attempt = 0
        while not self._stopped.is_set():
            attempt += 1
            target = self.target
            try:
                secret = d.open_secret(target.secret_sealed)
            except SealError as exc:
                outcome = Outcome(error=str(exc))
            else:
                outcome = d.sender.post(target.url, body, signed_headers(the_id, body, secret))
            now = now_ms()
            delay_s = _backoff(attempt, policy.retry_max_s, outcome.retry_after_s)
            next_ms = min(now + int(delay_s * 1000), deadline_ms)
            if outcome.ok:
                status = "delivered"
            elif outcome.refused or _refused_for_good(outcome.status) or now >= deadline_ms:
                status = "failed"
            else:
                status = "pending"
            d.history.record(
                delivery_id=the_id,
                webhook_id=self.webhook_id,
                seq=event.seq,
                event_id=event.id,
                event=kind,
                event_ts=event.ts,
                attempt_ts=now,
                outcome=outcome,
                status=status,
                next_attempt_ts=next_ms if status == "pending" else None,
            )
            if status != "pending":
                if status == "failed":
                    log.warning(
                        "webhook %s: delivery %s of %s failed: %s",
                        self.webhook_id,
                        the_id,
                        kind,
                        outcome.error or f"HTTP {outcome.status}",
                    )
                return True
            self._stopped.wait(max(0.0, (next_ms - now) / 1000))
        return False


def _refused_for_good(status: int | None) -> bool:
    return status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX


def _backoff(attempt: int, cap_s: float, retry_after_s: float | None) -> float:
    """Exponential backoff with jitter (half to all of the step), at least what ``Retry-After``
    asks, at most ``cap_s``... unless the receiver asks for longer."""
    step = min(cap_s, RETRY_BASE_S * 2 ** min(attempt - 1, 30))
    delay = step * (0.5 + random.random() / 2)
    return max(delay, retry_after_s or 0.0)
