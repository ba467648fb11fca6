"""The webhooks page: each webhook with its newest deliveries (status, attempts, answer, error)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from trackledger.api.auth.guard import user_of
from trackledger.api.context import ServerContext
from trackledger.api.web.templating import error_page, render

DELIVERIES_SHOWN = 20
STATUS_BADGES = {"delivered": "status-finished", "pending": "status-running", "failed": "status-failed"}


def webhooks_page(ctx: ServerContext, request: Request) -> Response:
    if ctx.auth is not None and not ctx.auth.accounts.is_admin(user_of(request)):
        return error_page(request, 403, "For admins", "Only an admin may see the webhooks.")
    deliverer = ctx.webhooks
    hooks = [
        {**row, "deliveries": deliverer.history.deliveries(row["webhook_id"], DELIVERIES_SHOWN)}
        for row in deliverer.webhooks()
    ]
    return render(request, "webhooks.html", section="webhooks", hooks=hooks, badges=STATUS_BADGES)
