"""The ledger's newest events, read and decoded once for every webhook's worker.

One reader thread follows the ledger and keeps a window of the events a webhook can act on (those
that make notifications, and webhook updates and deletions), each with its notifications worked
out once; events that concern no webhook only move the window's head. Every worker reads the
window from its own cursor, so N webhooks cost one decode of each event, not N.

The reader never waits for a worker: the window keeps the newest ``WINDOW_ITEMS`` items. A worker
that falls behind it (a slow or failing receiver, a backlog after a restart) reads the ledger on
its own until it is back within the window: a slow receiver holds back nobody else, and the
memory held is bounded by the window, not by how far behind the slowest worker is.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from trackledger.api.webhooks.catalog import notifications
from trackledger.ledger.events import Event, WebhookDeleted, WebhookUpdated
from trackledger.ledger.follow import Follower

log = logging.getLogger("trackledger.webhooks")
BATCH_EVENTS = 500  # events read from the ledger per poll
WINDOW_ITEMS = 2000  # the newest events kept for the workers (only those a webhook can act on)


@dataclass(frozen=True)
class Item:
    """An event a webhook can act on, and the (kind, data) notifications it makes."""

    event: Event
    notes: tuple[tuple[str, dict], ...]


def items_of(events: Sequence[Event]) -> list[Item]:
    """The events of ``events`` a webhook can act on, as items. Imported history makes no
    notifications: it happened elsewhere, before."""
    found = []
    for event in events:
        if isinstance(event, WebhookUpdated | WebhookDeleted):
            found.append(Item(event, ()))
        elif not event.imported_from and (notes := tuple(notifications(event))):
            found.append(Item(event, notes))
    return found


class SharedFeed:
    """The window: the items with seq in (``start``, ``head``], every event up to ``head`` read."""

    def __init__(self, ledger, poll_s: float, after: int, window: int = WINDOW_ITEMS):
        self.ledger = ledger
        self.poll_s = poll_s
        self.window = window
        self._items: deque[Item] = deque()
        self._start = self._head = after
        self._changed = threading.Condition()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="webhook-feed", daemon=True)
        self._thread.start()

    def read(self, after: int, wait_s: float) -> tuple[list[Item], int] | None:
        """The items after seq ``after`` and the seq every event has been read up to, waiting up
        to ``wait_s`` for news when there is none; None when ``after`` is behind the window (the
        caller reads the ledger itself)."""
        with self._changed:
            if after >= self._head:
                self._changed.wait_for(lambda: self._head > after or self._stopped.is_set(), wait_s)
            if after < self._start:
                return None
            return [item for item in self._items if item.event.seq > after], max(after, self._head)

    def stop(self) -> None:
        self._stopped.set()
        with self._changed:
            self._changed.notify_all()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _follow(self) -> None:
        follower = Follower(self.ledger, self._head)
        while not self._stopped.is_set():
            try:
                events = follower.poll(BATCH_EVENTS)
            except Exception:  # a read racing a roll, a store hiccup: start again from the head
                log.exception("webhooks: reading the ledger failed; retrying")
                follower = Follower(self.ledger, self._head)
                self._stopped.wait(1.0)
                continue
            if not events:
                self._stopped.wait(self.poll_s)
                continue
            items = items_of(events)
            with self._changed:
                self._items.extend(items)
                while len(self._items) > self.window:
                    self._start = self._items.popleft().event.seq
                self._head = events[-1].seq
                self._changed.notify_all()
