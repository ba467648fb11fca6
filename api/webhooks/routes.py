"""MLflow's webhook API (``/api/2.0/mlflow/webhooks``) and the native delivery history.

Changes are ledger events (``webhook_created``, ``_updated``, ``_deleted``); the secret goes into
them sealed and is never returned. Beyond MLflow's fields, a webhook may subscribe to trackledger's
own kinds and carry a ``filter`` (``experiment_ids``, ``tag_key``). MLflow's client cannot parse
those kinds, so MLflow's routes show a webhook's MLflow kinds in ``events`` and all of them in
``trackledger_events``, and MLflow's list leaves out webhooks with none of MLflow's kinds
(``GET /api/ledger/webhooks`` lists every webhook).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from trackledger.api import writes
from trackledger.api.auth.guard import require_admin
from trackledger.api.errors import invalid, missing, not_found
from trackledger.api.http import body_as, fields_as, int_query, json_response, origin_of
from trackledger.api.threads import blocking, read_after_writes
from trackledger.api.validation import integer
from trackledger.api.webhooks.catalog import MLFLOW_KINDS, parse_kind, wire_kind
from trackledger.api.webhooks.sender import check_url
from trackledger.ledger.events import new_event_id

STATUSES = ("ACTIVE", "DISABLED")
LIST_MAX_RESULTS = (100, 1000)  # MLflow's default page of webhooks, and our cap
DELIVERIES_PAGE = (50, 1000)


class Filter(msgspec.Struct):
    experiment_ids: list[str] | None = None
    tag_key: str | None = None


class CreateWebhook(msgspec.Struct):
    name: str | None = None
    url: str | None = None
    events: list | None = None
    description: str | None = None
    secret: str | None = None
    status: str | None = None
    filter: Filter | None = None


class ListWebhooks(msgspec.Struct):
    max_results: int | None = None
    page_token: str | None = None


class TestWebhook(msgspec.Struct):
    event: dict | str | None = None


def _kinds(events: list | None) -> list[str]:
    kinds = list(dict.fromkeys(parse_kind(e) for e in events or ()))
    if not kinds:
        raise invalid("Webhook events cannot be empty")
    return kinds


def _status(value: str) -> str:
    status = value.upper()
    if status not in STATUSES:
        raise invalid(f"Invalid webhook status '{value}': use ACTIVE or DISABLED")
    return status


def _name(value: str) -> str:
    if not value.strip():
        raise invalid("Webhook name cannot be empty")
    return value


def _url(ctx, value: str) -> str:
    return check_url(value, ctx.settings.webhook_allow_private)


def _seal(ctx, secret: str) -> str:
    return ctx.webhooks.sealer.seal(secret) if secret else ""


def _filter(f: Filter) -> tuple[list[str] | None, str | None]:
    return f.experiment_ids, f.tag_key


def webhook_json(row: dict) -> dict:
    kinds = list(row["events"])
    out = {
        "webhook_id": row["webhook_id"],
        "name": row["name"],
        "url": row["url"],
        "events": [wire_kind(k) for k in kinds if k in MLFLOW_KINDS],
        "status": row["status"],
        "creation_timestamp": row["creation_timestamp"],
        "last_updated_timestamp": row["last_updated_timestamp"],
        "trackledger_events": kinds,
        "filter": {
            "experiment_ids": list(row["filter_experiment_ids"] or ()),
            "tag_key": row["filter_tag_key"],
        },
    }
    if row["description"]:
        out["description"] = row["description"]
    return out


def _row(ctx, webhook_id: str) -> dict | None:
    found = ctx.projection.read_records("SELECT * FROM webhooks WHERE webhook_id = ?", [webhook_id])
    return found[0] if found else None


async def _existing(ctx, webhook_id: str) -> dict:
    row = await read_after_writes(ctx, _row, ctx, webhook_id)
    if row is None:
        raise not_found(f"Webhook with ID {webhook_id} not found")
    return row


async def _commit(ctx, request: Request, decide, *args) -> None:
    """The write, then the deliverer's list of webhooks is reloaded."""
    await ctx.writes.commit_off_loop(origin_of(request), decide, *args)
    await blocking(ctx.webhooks.refresh)


async def create_webhook(ctx, request: Request):
    req = await body_as(request, CreateWebhook)
    if not req.name:
        raise missing("name")
    if not req.url:
        raise missing("url")
    name, url, kinds = _name(req.name), _url(ctx, req.url), _kinds(req.events)
    status = _status(req.status or "ACTIVE")
    experiment_ids, tag_key = _filter(req.filter or Filter())
    webhook_id = origin_of(request).derived_id("webhook") or new_event_id().replace("-", "")

    await _commit(
        ctx,
        request,
        writes.webhooks.create,
        webhook_id,
        name,
        url,
        kinds,
        status,
        req.description or "",
        _seal(ctx, req.secret) or None,
        experiment_ids or [],
        tag_key or None,
    )
    return json_response({"webhook": webhook_json(await _existing(ctx, webhook_id))})


async def list_webhooks(ctx, request: Request):
    req = await fields_as(request, ListWebhooks)
    default, cap = LIST_MAX_RESULTS
    limit = req.max_results or default
    if limit < 1 or limit > cap:
        raise invalid(f"max_results must be between 1 and {cap}, got {limit}")
    start = _offset(req.page_token)
    rows = [r for r in await blocking(ctx.webhooks.webhooks) if set(r["events"]) & set(MLFLOW_KINDS)]
    out: dict = {"webhooks": [webhook_json(r) for r in rows[start : start + limit]]}
    if start + limit < len(rows):
        out["next_page_token"] = str(start + limit)
    return json_response(out)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    offset = integer(token)
    if offset is None or offset < 0:
        raise invalid(f"Invalid page token {token!r}")
    return offset


async def get_webhook(ctx, request: Request, webhook_id: str):
    return json_response({"webhook": webhook_json(await _existing(ctx, webhook_id))})


async def update_webhook(ctx, request: Request, webhook_id: str):
    req = await body_as(request, CreateWebhook)
    name = None if req.name is None else _name(req.name)
    url = None if req.url is None else _url(ctx, req.url)
    kinds = None if req.events is None else _kinds(req.events)
    status = None if req.status is None else _status(req.status)
    experiment_ids, tag_key = _filter(req.filter) if req.filter else (None, None)
    sealed = None if req.secret is None else _seal(ctx, req.secret)

    await _commit(
        ctx,
        request,
        writes.webhooks.update,
        webhook_id,
        name,
        url,
        kinds,
        status,
        req.description,
        sealed,
        experiment_ids,
        tag_key,
    )
    return json_response({"webhook": webhook_json(await _existing(ctx, webhook_id))})


async def delete_webhook(ctx, request: Request, webhook_id: str):
    await _commit(ctx, request, writes.webhooks.delete, webhook_id)
    return json_response()


async def test_webhook(ctx, request: Request, webhook_id: str):
    req = await body_as(request, TestWebhook)
    row = await _existing(ctx, webhook_id)
    kind = parse_kind(req.event) if req.event else row["events"][0]
    outcome = await blocking(ctx.webhooks.test, row, kind)
    result: dict = {"success": outcome.ok}
    if outcome.status is not None:
        result["response_status"] = outcome.status
        result["response_body"] = outcome.body
    if not outcome.ok:
        result["error_message"] = outcome.error or f"the receiver answered HTTP {outcome.status}"
    return json_response({"result": result})


async def all_webhooks(ctx, request: Request):
    """``GET /api/ledger/webhooks``: every webhook, whatever kinds it hears (admins, with auth)."""
    require_admin(ctx, request)
    return json_response({"webhooks": [webhook_json(r) for r in await blocking(ctx.webhooks.webhooks)]})


async def deliveries(ctx, request: Request, webhook_id: str):
    """``GET /api/ledger/webhooks/{id}/deliveries?limit=N&before_seq=SEQ``: newest first, each with
    its attempts; the next page is ``before_seq`` = the last one's ``seq`` (admins, with auth)."""
    require_admin(ctx, request)
    await _existing(ctx, webhook_id)
    default, cap = DELIVERIES_PAGE
    limit = int_query(request, "limit") or default
    if limit < 1 or limit > cap:
        raise invalid(f"'limit' must be between 1 and {cap}")
    found = await blocking(
        ctx.webhooks.history.deliveries, webhook_id, limit, int_query(request, "before_seq")
    )
    return json_response({"deliveries": found})


ROUTES = {
    ("POST", "webhooks"): create_webhook,
    ("GET", "webhooks"): list_webhooks,
}
PATTERN_ROUTES = {
    ("GET", r"webhooks/(?P<webhook_id>[^/]+)"): get_webhook,
    ("PATCH", r"webhooks/(?P<webhook_id>[^/]+)"): update_webhook,
    ("DELETE", r"webhooks/(?P<webhook_id>[^/]+)"): delete_webhook,
    ("POST", r"webhooks/(?P<webhook_id>[^/]+)/test"): test_webhook,
}
