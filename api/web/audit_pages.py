"""The audit page (the whole ledger, filtered and paged) and the SQL page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from trackledger.api.context import ServerContext
from trackledger.api.validation import integer
from trackledger.api.web import reads
from trackledger.api.web.templating import render
from trackledger.ledger.events import TYPE_BY_TAG

AUDIT_PAGE_SIZE = 100
SQL_EXAMPLE = """SELECT r.run_name, r.user_id, p.value AS C, m.value AS accuracy
FROM runs r
LEFT JOIN params p ON p.run_id = r.run_id AND p.key = 'C'
LEFT JOIN latest_metrics m ON m.run_id = r.run_id AND m.key = 'accuracy'
ORDER BY r.start_time DESC
LIMIT 100"""


@dataclass
class AuditQuery:
    actor: str = ""
    type: str = ""
    experiment: str = ""
    since: str = ""  # as the datetime-local input sends it, UTC
    until: str = ""
    verified: str = ""  # "1": only events whose actor was authenticated

    @property
    def active(self) -> bool:
        return any((self.actor, self.type, self.experiment, self.since, self.until, self.verified))


def _epoch_ms(text: str, field: str) -> int | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    return int(moment.replace(tzinfo=moment.tzinfo or dt.UTC).timestamp() * 1000)


def audit_page(ctx: ServerContext, request: Request) -> Response:
    q = request.query_params
    query = AuditQuery(**{name: q.get(name, "").strip() for name in AuditQuery.__dataclass_fields__})
    page = max(1, integer(q.get("page")) or 1)
    events, has_more, error = [], False, ""
    try:
        since, until = _epoch_ms(query.since, "From"), _epoch_ms(query.until, "To")
    except ValueError as exc:
        error = str(exc)
    else:
        events = reads.audit_events(
            ctx,
            actor=query.actor,
            type=query.type,
            experiment_id=query.experiment,
            since_ts=since,
            until_ts=until,
            verified_only=query.verified == "1",
            limit=AUDIT_PAGE_SIZE + 1,
            offset=(page - 1) * AUDIT_PAGE_SIZE,
        )
        has_more = len(events) > AUDIT_PAGE_SIZE
        events = events[:AUDIT_PAGE_SIZE]
    return render(
        request,
        "audit.html",
        section="audit",
        query=query,
        page=page,
        has_more=has_more,
        events=events,
        error=error,
        event_types=sorted(TYPE_BY_TAG),
        actors=reads.actors(ctx),
        experiments=reads.experiment_choices(ctx),
    )


def sql_page(ctx: ServerContext, request: Request) -> Response:
    settings = ctx.settings
    return render(
        request,
        "sql.html",
        section="sql",
        endpoint="/api/sql",
        example=SQL_EXAMPLE,
        schema=reads.table_columns(ctx),
        caps={"max_rows": settings.sql_max_rows, "timeout_s": settings.sql_timeout_s},
    )
