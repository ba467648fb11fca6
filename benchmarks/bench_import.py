"""Import speed from MLflow's SQLite store: ``python3 benchmarks/bench_import.py [--repeats N] [--quick]``.

Builds, once, an MLflow SQLite store in MLflow's own schema (made by MLflow, rows bulk-inserted with
sqlite3): 1,000 runs with 10 params and 10 tags each and 5,000 metric points each (5M points), and a
second one of 1,000 runs with their params and tags only. Then imports each into a fresh local store,
offline, as ``trackledger import`` does (progress bars off), and reports medians over repeats:
- metric points/s and runs/s over the whole import (read, events, WAL, segments, projection);
- the same without the final projection catch-up (what the import itself costs).
Targets (issue 15): >= 1,000,000 metric points/s and >= 200 runs/s with their params and tags.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trackledger.importer import open_source
from trackledger.importer.driver import Importer, Options
from trackledger.importer.target import StoreTarget

from tests.importer.synthetic import generate


def import_once(db: Path, workdir: Path) -> tuple[float, float, dict]:
    """Seconds of the whole import and of its appends alone, and its counts."""
    store = workdir / "data"
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    source, files = open_source(f"sqlite:///{db}", str(workdir / "no-artifacts"))
    target = StoreTarget(str(store), store / ".state", str(store / "artifacts"))
    report = Importer(source, files, target, Options()).run()
    appended = time.perf_counter() - started
    target.close()
    source.close()
    return time.perf_counter() - started, appended, report.counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 runs, 500k points: a smoke run")
    parser.add_argument("--workdir", help="keep the generated stores here (reused when present)")
    args = parser.parse_args()
    runs, points_per_run = (100, 5_000) if args.quick else (1_000, 5_000)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-import-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stores = {"points": workdir / f"points-{runs}.db", "runs": workdir / f"runs-{runs}.db"}
    for kind, db in stores.items():
        if not db.exists():
            started = time.perf_counter()
            generate(db, runs=runs, points_per_run=points_per_run if kind == "points" else 0)
            print(f"generated {db.name} in {time.perf_counter() - started:.0f}s")
    print(f"import benchmark: {os.cpu_count()} CPUs, medians of {args.repeats} repeats\n")
    for db in stores.values():
        results = [import_once(db, workdir) for _ in range(args.repeats)]
        total = statistics.median(r[0] for r in results)
        appended = statistics.median(r[1] for r in results)
        counts = results[0][2]
        print(
            f"{db.name}: {counts['runs']:,} runs, {counts['params']:,} params, {counts['tags']:,} tags, "
            f"{counts['metric points']:,} points"
        )
        for label, seconds in (("whole import", total), ("without the projection catch-up", appended)):
            print(
                f"  {label:<32} {seconds:6.1f} s  {counts['metric points'] / seconds:>12,.0f} points/s  "
                f"{counts['runs'] / seconds:>8,.0f} runs/s"
            )
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
