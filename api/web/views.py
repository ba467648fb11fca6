"""Shaping MLflow-style run dicts into what the templates show."""

from __future__ import annotations

import math


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


def comparison_rows(per_run: list[dict[str, object]]) -> list[dict]:
    """Rows ``{key, cells (one value per run, None if absent), differs}`` over the union of keys."""
    keys = sorted(set().union(*per_run)) if per_run else []
    rows = []
    for key in keys:
        values = [mapping.get(key) for mapping in per_run]
        rows.append({"key": key, "cells": values, "differs": len({repr(v) for v in values}) > 1})
    return rows
