"""An experiment's chart view: every run the runs table's filter finds, as parallel coordinates,
a scatter, bars of single-value metrics and sampled metric lines.

The page is a light shell stating what will be drawn (how many runs, how many points per line);
/static/charts.js then fetches the data from ``/experiments/<id>/charts/data``, which DuckDB
aggregates (latest values per run) and samples (bounded points per line) under the reader's scope.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from trackledger.api.auth.guard import scope_of
from trackledger.api.context import ServerContext
from trackledger.api.errors import MlflowError, not_found
from trackledger.api.threads import read_after_writes
from trackledger.api.web.chart_views import chart_lines, chart_runs, points_per_line, runs_by_id
from trackledger.api.web.pages import NotFound
from trackledger.api.web.runs_table import RunsQuery
from trackledger.api.web.templating import render
from trackledger.api.web.views import finite
from trackledger.projections import InvalidQuery, chart_data
from trackledger.projections import experiments as experiment_reads
from trackledger.projections import runs as run_reads
from trackledger.projections.scope import reading_as

MAX_CHART_RUNS = 5_000  # past this the view charts the newest ones and says so
MAX_LINE_CHARTS = 4  # line charts drawn at first; the page offers the other metrics


def _experiment(ctx: ServerContext, experiment_id: str) -> dict | None:
    return ctx.projection.query(experiment_reads.experiment, experiment_id)


def _query(experiment_id: str, runs_query: RunsQuery):
    return run_reads.run_query([experiment_id], runs_query.view_type).filter(runs_query.filter)


def limits(total: int) -> dict:
    """What the view will draw for ``total`` matching runs, stated before it is drawn."""
    shown = min(total, MAX_CHART_RUNS)
    return {"total": total, "shown": shown, "capped": total > shown, "points": points_per_line(shown)}


def chart_view_page(ctx: ServerContext, request: Request) -> Response:
    experiment_id = request.path_params["experiment_id"]
    experiment = _experiment(ctx, experiment_id)
    if experiment is None:
        raise NotFound(
            "Experiment not found",
            f"There is no experiment with the id {experiment_id!r}.",
            "The experiments list shows every experiment; deleted ones appear there on request.",
        )
    runs_query = RunsQuery.from_request(request)
    error, total = "", 0
    try:
        _rows, total = ctx.projection.query(_query(experiment_id, runs_query).window, "r.run_id", 0, 1)
    except InvalidQuery as exc:
        error = str(exc)
    return render(
        request,
        "chart_view.html",
        experiment=experiment,
        query=runs_query,
        error=error,
        limits=limits(total),
        max_line_charts=MAX_LINE_CHARTS,
    )


def chart_view_data(ctx: ServerContext, request: Request) -> Response:
    """The chart view's JSON: runs (unique labels), params and latest metrics per run, which metrics
    are single values, and the sampled lines of the metrics asked for (``?line=KEY``, repeated;
    else the first few)."""
    experiment_id = request.path_params["experiment_id"]
    if _experiment(ctx, experiment_id) is None:
        raise not_found(f"No experiment with id={experiment_id}")
    runs_query = RunsQuery.from_request(request)
    try:
        rows, total = ctx.projection.query(
            chart_data.run_values, _query(experiment_id, runs_query), MAX_CHART_RUNS
        )
        counts = ctx.projection.query(chart_data.points_per_run, _query(experiment_id, runs_query))
    except InvalidQuery as exc:
        raise MlflowError(str(exc)) from exc
    runs = chart_runs(rows)
    params = sorted({p["key"] for row in rows for p in row["params"] or ()})
    metrics = sorted(counts)
    per_run_params = [{p["key"]: p["value"] for p in row["params"] or ()} for row in rows]
    per_run_metrics = [{m["key"]: finite(m["value"]) for m in row["metrics"] or ()} for row in rows]
    series = [key for key in metrics if counts[key] > 1]
    asked = [key for key in request.query_params.getlist("line") if key in series]
    line_keys = asked or series[:MAX_LINE_CHARTS]
    points = points_per_line(len(runs))
    history = ctx.projection.query(
        chart_data.sampled_histories, runs_by_id([row["run_id"] for row in rows]), line_keys, points
    )
    return JSONResponse(
        {
            **limits(total),
            "runs": runs,
            "params": {key: [values.get(key) for values in per_run_params] for key in params},
            "metrics": {key: [values.get(key) for values in per_run_metrics] for key in metrics},
            "single": [key for key in metrics if counts[key] == 1],
            "series": series,
            "lines": chart_lines(history, runs, points),
        }
    )


def json_read(ctx: ServerContext, build):
    """An endpoint answering JSON read in a worker thread after the projection caught up, with only
    what the request's user may read (MLflow-style JSON errors, from the app's handler)."""

    def scoped_build(ctx: ServerContext, request: Request) -> Response:
        with reading_as(scope_of(ctx, request)):
            return build(ctx, request)

    async def endpoint(request: Request) -> Response:
        return await read_after_writes(ctx, scoped_build, ctx, request)

    endpoint.__name__ = build.__name__
    return endpoint
