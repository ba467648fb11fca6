"""Import speed from MLflow's SQLite store: ``python3 benchmarks/bench_import.py [--repeats N] [--quick]``.

Builds, once, an MLflow SQLite store in MLflow's own schema (made by MLflow, rows bulk-inserted with
sqlite3): 1,000 runs with 10 params and 10 tags each and 5,000 metric points each (5M points), and a
second one of 1,000 runs with their params and tags only. Then imports each into a fresh local store,
offline, as ``trackledger import`` does (progress bars off), each repeat in a process of its own, and
reports medians over repeats:
- metric points/s and runs/s of the import itself: from opening the source until every event is
  durable in the ledger (its WAL);
- the same for the whole command, which then rolls the WAL into segments and catches the projection
  up (what a server would otherwise do when it starts);
- the same per CPU-second of the process (all its threads) and of its reading process of metric
  points: on a shared machine whose other work takes the CPUs, wall-clock rates say more about
  that work than about the import;
- the peak RSS of the importing process until durable and in all, and of its reading process
  (the largest of the repeats);
- a rerun over the imported store with nothing changed in the source (every run found current by
  its state marker), in runs/s of the whole command.
Targets (issue 15): >= 1,000,000 metric points/s and >= 200 runs/s with their params and tags.
``--profile`` prints cProfile's top functions of one more import of the points store.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import multiprocessing
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trackledger.importer import open_source
from trackledger.importer.driver import Importer, Options
from trackledger.importer.target import StoreTarget

from tests.importer.synthetic import generate


class Result(NamedTuple):
    seconds: float  # the whole command
    seconds_durable: float  # until every event is durable in the ledger
    cpu: float  # CPU seconds of the process (all its threads)
    cpu_durable: float
    counts: dict
    peak_mb_durable: float
    peak_mb: float
    reader_peak_mb: float  # the reading process of metric points (0 without points)


def cpu_seconds() -> float:
    """CPU of this process and of its ended children (the import's reader of metric points)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def import_once(db: Path, workdir: Path, fresh: bool = True) -> Result:
    """``fresh``: into an empty store; else into the store of the last import (a rerun)."""
    store = workdir / "data"
    if fresh:
        shutil.rmtree(store, ignore_errors=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    source, files = open_source(f"sqlite:///{db}", str(workdir / "no-artifacts"))
    target = StoreTarget(str(store), store / ".state", str(store / "artifacts"))
    report = Importer(source, files, target, Options()).run()
    source.close()  # ends the reading process, so that its CPU is counted
    appended, cpu_appended = time.perf_counter() - started, cpu_seconds() - cpu_started
    importing_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    target.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Result(
        time.perf_counter() - started,
        appended,
        cpu_seconds() - cpu_started,
        cpu_appended,
        dict(report.counts),
        importing_mb,
        peak_mb,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


def import_in_child(db: Path, workdir: Path, fresh: bool = True) -> Result:
    """``import_once`` in a fresh process, so that its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(import_once, db, workdir, fresh).result()


def profile(db: Path, workdir: Path) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    import_once(db, workdir)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 runs, 500k points: a smoke run")
    parser.add_argument("--workdir", help="keep the generated stores here (reused when present)")
    parser.add_argument("--profile", action="store_true", help="then profile one import of the points store")
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
        results = [import_in_child(db, workdir) for _ in range(args.repeats)]
        counts = results[0].counts
        points, runs = counts.get("metric points", 0), counts["runs"]
        print(
            f"{db.name}: {runs:,} runs, {counts['params']:,} params, {counts['tags']:,} tags, "
            f"{points:,} points; "
            f"peak RSS {max(r.peak_mb_durable for r in results):,.0f} MB until durable, "
            f"{max(r.peak_mb for r in results):,.0f} MB in all, "
            f"{max(r.reader_peak_mb for r in results):,.0f} MB its reader of points"
        )
        for label, wall, cpu in (
            ("import, durable in the ledger", "seconds_durable", "cpu_durable"),
            ("with segments and projection", "seconds", "cpu"),
        ):
            seconds = statistics.median(getattr(r, wall) for r in results)
            cpu_seconds = statistics.median(getattr(r, cpu) for r in results)
            print(
                f"  {label:<30} {seconds:6.1f} s {points / seconds:>11,.0f} points/s "
                f"{runs / seconds:>6,.0f} runs/s"
                f"   per CPU-second: {points / cpu_seconds:>11,.0f} points {runs / cpu_seconds:>6,.0f} runs"
            )
        reruns = [import_in_child(db, workdir, fresh=False) for _ in range(args.repeats)]
        assert all(r.counts.get("runs", 0) == 0 for r in reruns), "a rerun imported runs again"
        seconds = statistics.median(r.seconds for r in reruns)
        cpu_seconds = statistics.median(r.cpu for r in reruns)
        print(
            f"  {'rerun, nothing changed':<30} {seconds:6.1f} s {runs / seconds:>6,.0f} runs/s"
            f"   per CPU-second: {runs / cpu_seconds:>6,.0f} runs"
        )
    if args.profile:
        profile(stores["points"], workdir)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
