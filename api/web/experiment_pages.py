"""The experiments list and an experiment's runs table."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from trackledger.api.context import ServerContext
from trackledger.api.web import reads, runs_reads
from trackledger.api.web.pages import NotFound
from trackledger.api.web.runs_table import RunsQuery, RunsTable
from trackledger.api.web.templating import render
from trackledger.projections import InvalidQuery
from trackledger.projections import experiments as experiment_reads


def experiments_page(ctx: ServerContext, request: Request) -> Response:
    show_deleted = request.query_params.get("deleted") == "1"
    return render(
        request,
        "experiments.html",
        section="experiments",
        experiments=reads.experiments_overview(ctx, show_deleted),
        show_deleted=show_deleted,
    )


def experiment_page(ctx: ServerContext, request: Request) -> Response:
    live_after = reads.live_seq(ctx)
    experiment_id = request.path_params["experiment_id"]
    experiment = ctx.projection.query(experiment_reads.experiment, experiment_id)
    if experiment is None:
        raise NotFound(
            "Experiment not found",
            f"There is no experiment with the id {experiment_id!r}.",
            "The experiments list shows every experiment; deleted ones appear there on request.",
        )
    table = RunsTable(RunsQuery.from_request(request), *runs_reads.run_keys(ctx, experiment_id))
    try:
        runs_reads.runs_page(ctx, experiment_id, table)
    except InvalidQuery as exc:
        table.error = str(exc)
    return render(request, "experiment.html", experiment=experiment, table=table, live_after=live_after)
