"""Chart data shaped for /static/charts.js: runs with names that tell them apart, and sampled metric
lines, as compact JSON (one array per line, not an object per point)."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from trackledger.api.web.views import finite
from trackledger.projections import runs as run_reads

# Points drawn in one line chart across all its lines; each line gets its share, within bounds.
POINT_BUDGET = 40_000
MIN_POINTS_PER_LINE = 50
MAX_POINTS_PER_LINE = 1_000


def points_per_line(lines: int) -> int:
    """How many points each of ``lines`` lines is sampled to."""
    return max(MIN_POINTS_PER_LINE, min(MAX_POINTS_PER_LINE, POINT_BUDGET // max(lines, 1)))


def runs_by_id(run_ids: list[str]):
    """A runs query for exactly these runs, whatever their lifecycle (a deleted run stays reachable
    by its id)."""
    return run_reads.RUNS.query().restrict("list_contains(?::VARCHAR[], r.run_id)", list(run_ids))


def chart_runs(rows: list[dict]) -> list[dict]:
    """``{id, name, label, status, parent, start}`` per run of ``chart_data.run_values``: ``label`` is
    unique, the parent's name going before a name several runs share (fold-0 under two searches),
    then the id's start where even that repeats."""
    names = [row["run_name"] or row["run_id"][:8] for row in rows]
    shared = Counter(names)
    labels = [
        f"{row['parent_name'] or row['parent_id'][:8]} / {name}"
        if shared[name] > 1 and row.get("parent_id")
        else name
        for row, name in zip(rows, names, strict=True)
    ]
    repeated = Counter(labels)
    labels = [
        f"{label} ({row['run_id'][:6]})" if repeated[label] > 1 else label
        for row, label in zip(rows, labels, strict=True)
    ]
    return [
        {
            "id": row["run_id"],
            "name": row["run_name"],
            "label": label,
            "status": row["status"],
            "parent": row.get("parent_id"),
            "start": row["start_time"],
        }
        for row, label in zip(rows, labels, strict=True)
    ]


def chart_lines(history: pa.Table, runs: list[dict], points: int) -> dict:
    """``{points, keys, series: {key: [[run index, steps, timestamps, values], ...]}}`` from
    ``chart_data.sampled_histories``; lines follow the order of ``runs``."""
    index = {run["id"]: i for i, run in enumerate(runs)}
    series: dict[str, dict[int, list]] = {}
    columns = [history.column(name).to_pylist() for name in ("run_id", "key", "step", "timestamp", "value")]
    for run_id, key, step, timestamp, value in zip(*columns, strict=True):
        at = index.get(run_id)
        if at is None:
            continue
        line = series.setdefault(key, {}).setdefault(at, [at, [], [], []])
        line[1].append(step)
        line[2].append(timestamp)
        line[3].append(finite(value))
    return {
        "points": points,
        "keys": sorted(series),
        "series": {key: [lines[i] for i in sorted(lines)] for key, lines in sorted(series.items())},
    }
