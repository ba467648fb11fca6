"""Shaping MLflow-style run dicts and metric histories into what the templates show."""

from __future__ import annotations

import math

import pyarrow as pa

MAX_POINTS_PER_LINE = 5_000  # a chart line with more points is thinned evenly (the last point kept)


def run_summary(run: dict) -> dict:
    """The columns every page shows for a run, from the MLflow ``{"info", "data", ...}`` shape."""
    info = run["info"]
    start, end = info.get("start_time"), info.get("end_time")
    return {
        "run_id": info["run_id"],
        "name": info.get("run_name", ""),
        "status": info.get("status", ""),
        "user": info.get("user_id", ""),
        "start_time": start,
        "end_time": end,
        "duration": end - start if start is not None and end is not None else None,
        "lifecycle_stage": info.get("lifecycle_stage", "active"),
        "experiment_id": info.get("experiment_id"),
        "artifact_uri": info.get("artifact_uri", ""),
    }


def key_values(items: list[dict] | None) -> list[tuple[str, str]]:
    return sorted((item["key"], item["value"]) for item in items or [])


def finite(value):
    """JSON has no NaN or infinity: the charts get a gap instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def chart_data(history: pa.Table, line_names: dict[str, str]) -> list[dict]:
    """``[{key, series: [{name, x: steps, y: values}]}]``: one chart per metric key, one line per run.

    ``history`` is ``history.metric_history_arrow``: a row per point with run_id, key, step,
    value and timestamp. Points at one step are drawn in the order they were logged.
    """
    if history.num_rows == 0:
        return []
    history = history.sort_by(
        [("key", "ascending"), ("run_id", "ascending"), ("step", "ascending"), ("timestamp", "ascending")]
    )
    keys = history.column("key").to_pylist()
    run_ids = history.column("run_id").to_pylist()
    steps = history.column("step").to_pylist()
    values = history.column("value").to_pylist()

    charts: dict[str, dict[str, tuple[list, list]]] = {}
    for key, run_id, step, value in zip(keys, run_ids, steps, values, strict=True):
        xs, ys = charts.setdefault(key, {}).setdefault(run_id, ([], []))
        xs.append(step)
        ys.append(finite(value))
    order = {run_id: i for i, run_id in enumerate(line_names)}  # lines in the order runs are listed
    return [
        {
            "key": key,
            "series": [
                {"name": line_names.get(run_id, run_id), "x": _thin(xs), "y": _thin(ys)}
                for run_id, (xs, ys) in sorted(lines.items(), key=lambda line: order.get(line[0], len(order)))
            ],
        }
        for key, lines in charts.items()
    ]


def _thin(points: list) -> list:
    if len(points) <= MAX_POINTS_PER_LINE:
        return points
    stride = math.ceil(len(points) / MAX_POINTS_PER_LINE)
    return points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])


def comparison_rows(per_run: list[dict[str, object]]) -> list[dict]:
    """Rows ``{key, cells (one value per run, None if absent), differs}`` over the union of keys."""
    keys = sorted(set().union(*per_run)) if per_run else []
    rows = []
    for key in keys:
        values = [mapping.get(key) for mapping in per_run]
        rows.append({"key": key, "cells": values, "differs": len({repr(v) for v in values}) > 1})
    return rows
