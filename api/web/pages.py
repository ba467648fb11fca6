"""Turning a page function into a Starlette endpoint: off the event loop, read-your-writes, friendly
failures."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from trackledger.api.auth.guard import permits, scope_of
from trackledger.api.context import ServerContext
from trackledger.api.threads import read_after_writes
from trackledger.api.web.templating import error_page
from trackledger.projections.scope import reading_as

log = logging.getLogger("trackledger.web")

PageFunction = Callable[[ServerContext, Request], Response]


class NotFound(Exception):
    def __init__(self, title: str, message: str, hint: str = ""):
        super().__init__(message)
        self.title, self.message, self.hint = title, message, hint


def page(ctx: ServerContext, build: PageFunction):
    """An endpoint that builds the page in a worker thread (DuckDB reads block) after the projection
    has caught up with every acknowledged write, so a page opened after a log call shows it."""

    def scoped_build(ctx: ServerContext, request: Request) -> Response:
        with reading_as(scope_of(ctx, request)):  # a non-admin's page reads only what they may see
            return build(ctx, request)

    async def endpoint(request: Request) -> Response:
        try:
            return await read_after_writes(ctx, scoped_build, ctx, request)
        except NotFound as exc:
            return error_page(request, 404, exc.title, exc.message, exc.hint)
        except Exception:
            log.exception("building the web page %s failed", request.url.path)
            return error_page(
                request,
                500,
                "This page could not be built",
                "Something went wrong on the server while reading the data for this page. "
                "The details are in the server log.",
                "Reloading may help if the server was busy; otherwise please report it.",
            )

    endpoint.__name__ = build.__name__
    return endpoint


def permission_test(ctx: ServerContext, request: Request, **about) -> Callable[[str, str], bool]:
    """``may(method, route)``: whether the page's user may call that MLflow route on what ``about``
    names (``run_id``, ``name``: the fields of its body), by the REST guard's own rule. The page
    shows only the controls its user may use; the route still refuses the others."""

    @functools.cache
    def may(method: str, route: str) -> bool:
        return permits(ctx, request, method, route, **about)

    return may
