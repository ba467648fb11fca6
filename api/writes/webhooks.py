"""Webhooks: the events of creating, updating and deleting one (the secret arrives sealed)."""

from __future__ import annotations

from trackledger.api.errors import not_found
from trackledger.api.writes.envelope import Envelope
from trackledger.api.writes.write_index import WriteIndex
from trackledger.ledger.events import Event, WebhookCreated, WebhookDeleted, WebhookUpdated


def known_webhook(index: WriteIndex, webhook_id: str) -> None:
    if not index.has_row("webhooks", webhook_id=webhook_id):
        raise not_found(f"Webhook with ID {webhook_id} not found")


def create(
    index: WriteIndex,
    envelope: Envelope,
    webhook_id: str,
    name: str,
    url: str,
    kinds: list[str],
    status: str,
    description: str,
    secret_sealed: str | None,
    experiment_ids: list[str],
    tag_key: str | None,
) -> list[Event]:
    return [
        WebhookCreated(
            **envelope(0),
            webhook_id=webhook_id,
            name=name,
            url=url,
            webhook_events=kinds,
            status=status,
            description=description,
            secret_sealed=secret_sealed,
            filter_experiment_ids=experiment_ids,
            filter_tag_key=tag_key,
        )
    ]


def update(
    index: WriteIndex,
    envelope: Envelope,
    webhook_id: str,
    name: str | None,
    url: str | None,
    kinds: list[str] | None,
    status: str | None,
    description: str | None,
    secret_sealed: str | None,
    experiment_ids: list[str] | None,
    tag_key: str | None,
) -> list[Event]:
    """Fields left None keep their value."""
    known_webhook(index, webhook_id)
    return [
        WebhookUpdated(
            **envelope(0),
            webhook_id=webhook_id,
            name=name,
            url=url,
            webhook_events=kinds,
            status=status,
            description=description,
            secret_sealed=secret_sealed,
            filter_experiment_ids=experiment_ids,
            filter_tag_key=tag_key,
        )
    ]


def delete(index: WriteIndex, envelope: Envelope, webhook_id: str) -> list[Event]:
    known_webhook(index, webhook_id)
    return [WebhookDeleted(**envelope(0), webhook_id=webhook_id)]
