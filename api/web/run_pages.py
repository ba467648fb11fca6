"""The run page and the side-by-side comparison of runs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from trackledger.api.context import ServerContext
from trackledger.api.web import model_reads, reads, runs_reads
from trackledger.api.web.chart_views import (
    MAX_POINTS_PER_LINE,
    chart_lines,
    chart_runs,
    points_per_line,
    runs_by_id,
)
from trackledger.api.web.notes import NOTE_TAG, render_note
from trackledger.api.web.pages import NotFound, permission_test
from trackledger.api.web.runs_table import PAGE_SIZES
from trackledger.api.web.templating import error_page, render
from trackledger.api.web.views import comparison_rows, key_values, run_summary
from trackledger.projections import chart_data
from trackledger.projections import experiments as experiment_reads
from trackledger.projections import logged_models as logged_model_reads
from trackledger.projections import runs as run_reads

MAX_COMPARED = max(PAGE_SIZES)  # every run of the runs table's largest page; lines come sampled
RUN_HISTORY_LIMIT = 1_000


def _load_run(ctx: ServerContext, run_id: str) -> dict:
    run = ctx.projection.query(run_reads.run, run_id)
    if run is None:
        raise NotFound(
            "Run not found",
            f"There is no run with the id {run_id!r}.",
            "Check the link; run ids are 32 hexadecimal characters. Deleted runs stay reachable by their id.",
        )
    return run


def _experiment_for(ctx: ServerContext, experiment_id: str) -> dict:
    return ctx.projection.query(experiment_reads.experiment, experiment_id) or {
        "experiment_id": experiment_id,
        "name": experiment_id,
    }


def run_page(ctx: ServerContext, request: Request) -> Response:
    live_after = reads.live_seq(ctx)
    run = _load_run(ctx, request.path_params["run_id"])
    summary = run_summary(run)
    data = run.get("data", {})
    models = [
        model["info"]
        for output in run.get("outputs", {}).get("model_outputs", [])
        if (model := ctx.projection.query(logged_model_reads.logged_model, output["model_id"])) is not None
    ]
    tags = key_values(data.get("tags"))
    note_text = next((value for key, value in tags if key == NOTE_TAG), "")
    children, child_metrics, children_total = runs_reads.run_children(ctx, summary["run_id"])
    return render(
        request,
        "run.html",
        run=summary,
        parent=runs_reads.parent_of(ctx, summary["run_id"]),
        children=children,
        child_metrics=child_metrics,
        children_total=children_total,
        experiment=_experiment_for(ctx, summary["experiment_id"]),
        params=key_values(data.get("params")),
        metrics=sorted(data.get("metrics", []), key=lambda m: m["key"]),
        tags=[(key, value) for key, value in tags if key != NOTE_TAG],  # the note is shown as the description
        note_text=note_text,
        note_html=render_note(note_text),
        datasets=[_dataset_row(d) for d in run.get("inputs", {}).get("dataset_inputs", [])],
        models=models,
        charts=_charts(ctx, [summary["run_id"]], MAX_POINTS_PER_LINE),
        live_after=live_after,
        artifact_roots=reads.artifact_roots(ctx, summary, models),
        events=reads.run_events(ctx, summary["run_id"], [m["model_id"] for m in models], RUN_HISTORY_LIMIT),
        events_empty="No events recorded for this run.",
        registrations=model_reads.run_registrations(ctx, summary["run_id"]),
        model_names=model_reads.model_names(ctx),
        may=permission_test(ctx, request, run_id=summary["run_id"]),
    )


def _dataset_row(dataset_input: dict) -> dict:
    dataset = dataset_input.get("dataset", {})
    tags = {t["key"]: t["value"] for t in dataset_input.get("tags", [])}
    return {
        "name": dataset.get("name", ""),
        "digest": dataset.get("digest", ""),
        "context": tags.get("mlflow.data.context", ""),
        "source_type": dataset.get("source_type", ""),
        "source": dataset.get("source", ""),
    }


def compare_page(ctx: ServerContext, request: Request) -> Response:
    run_ids = list(dict.fromkeys(request.query_params.getlist("run")))  # unique, in the order ticked
    if not run_ids:
        return error_page(
            request,
            400,
            "No runs to compare",
            "Tick two or more runs in an experiment's runs table, then press “Compare selected”.",
        )
    if len(run_ids) > MAX_COMPARED:
        return error_page(
            request,
            400,
            "Too many runs to compare",
            f"{len(run_ids)} runs were chosen; compare at most {MAX_COMPARED} at a time.",
        )
    runs = [_load_run(ctx, run_id) for run_id in run_ids]
    summaries = [run_summary(run) for run in runs]
    data = [run.get("data", {}) for run in runs]
    experiment_ids = {s["experiment_id"] for s in summaries}
    charts = _charts(ctx, run_ids, points_per_line(len(run_ids)))
    return render(
        request,
        "compare.html",
        runs=summaries,
        experiment=_experiment_for(ctx, experiment_ids.pop()) if len(experiment_ids) == 1 else None,
        params=comparison_rows([dict(key_values(d.get("params"))) for d in data]),
        metrics=comparison_rows([{m["key"]: m["value"] for m in d.get("metrics", [])} for d in data]),
        tags=comparison_rows([dict(key_values(d.get("tags"))) for d in data]),
        charts=charts,
        labels={run["id"]: run["label"] for run in charts["runs"]},
    )


def _charts(ctx: ServerContext, run_ids: list[str], points: int) -> dict:
    """The runs (in the order of ``run_ids``, with unique labels) and every metric's lines, each
    sampled to at most ``points`` points, for /static/charts.js."""
    rows, _total = ctx.projection.query(chart_data.run_values, runs_by_id(run_ids), len(run_ids))
    order = {run_id: i for i, run_id in enumerate(run_ids)}
    runs = chart_runs(sorted(rows, key=lambda row: order[row["run_id"]]))
    keys = sorted({m["key"] for row in rows for m in row["metrics"] or ()})
    history = ctx.projection.query(chart_data.sampled_histories, runs_by_id(run_ids), keys, points)
    return {"runs": runs, "lines": chart_lines(history, runs, points)}
