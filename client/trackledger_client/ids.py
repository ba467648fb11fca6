"""The idempotency protocol shared with the server: ids derived from an ``Idempotency-Key``.

The server derives the id of the entity a request creates (a run, a logged model) and the ids of
the request's events from the request's ``Idempotency-Key`` header. The client computes the same
ids itself, so a run created while the server is down has its final id at once, and a resent
request appends nothing new. The rule (the server's copy: ``keyed_entity_id`` and
``keyed_event_id`` in ``ledger/events.py``):

- entity id: ``uuid5(NAMESPACE, f"{key}/{purpose}").hex`` (purpose ``run`` or ``model``; a
  logged model's id is ``"m-"`` followed by it);
- the i-th event of the request: ``str(uuid5(NAMESPACE, f"{key}#{i}"))``.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1c1a52-5d0e-4a55-9d0c-7a6b8f2f4c11")


def derived_id(idempotency_key: str, purpose: str) -> str:
    return uuid.uuid5(NAMESPACE, f"{idempotency_key}/{purpose}").hex


def run_id(idempotency_key: str) -> str:
    return derived_id(idempotency_key, "run")


def logged_model_id(idempotency_key: str) -> str:
    return "m-" + derived_id(idempotency_key, "model")


def event_id(idempotency_key: str, i: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{idempotency_key}#{i}"))
