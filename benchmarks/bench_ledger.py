"""Ledger throughput and size: ``python3 benchmarks/bench_ledger.py [--repeats N] [--quick]``.

Measures, as medians over repeats, on a local store and WAL in a temp directory:
- append rate for events of 1 metric and of 1,000 metrics, durability fsync and os, 1 and 8 callers
  (events/s and metric points/s; events are built before the clock starts, as the API would have them);
- bytes per metric point in segments (1M points, random float64 values, 100 keys, 10 runs);
- roll speed: WAL to one published segment, points/s.
Targets (issue 2): >= 1,000,000 points/s in 1,000-metric events; >= 5,000 single-event appends/s with
fsync and 8 callers; <= 12 bytes per point.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trackledger.ledger import Ledger
from trackledger.ledger.events import BatchLogged, Metric, new_event_id


def make_events(count: int, metrics_per_event: int, rng: random.Random) -> list[BatchLogged]:
    now = int(time.time() * 1000)
    events = []
    for i in range(count):
        metrics = [
            Metric(key=f"metric_{k % 100}", value=rng.random(), timestamp=now + i, step=i)
            for k in range(metrics_per_event)
        ]
        events.append(BatchLogged(id=new_event_id(), run_id=f"run-{i % 10}", metrics=metrics))
    return events


def append_rate(durability: str, callers: int, metrics_per_event: int, per_caller: int) -> float:
    """Appends per second (one event per append) for ``callers`` threads appending concurrently."""
    rng = random.Random(1)
    work = [make_events(per_caller, metrics_per_event, rng) for _ in range(callers)]
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(
            os.path.join(tmp, "store"),
            os.path.join(tmp, "state"),
            durability=durability,
            roll_bytes=1 << 40,
            roll_seconds=1e9,
        )
        barrier = threading.Barrier(callers + 1)

        def caller(events: list[BatchLogged]) -> None:
            barrier.wait()
            for event in events:
                ledger.append([event])

        threads = [threading.Thread(target=caller, args=(w,)) for w in work]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        ledger.close()
    return callers * per_caller / elapsed


def roll_and_size(points: int) -> tuple[float, float, int]:
    """(points/s of a WAL-to-segment roll, bytes per point in the segment, segment bytes)."""
    rng = random.Random(2)
    events = make_events(points // 1000, 1000, rng)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Ledger(
            os.path.join(tmp, "store"),
            os.path.join(tmp, "state"),
            durability="os",
            roll_bytes=1 << 40,
            roll_seconds=1e9,
        ) as ledger,
    ):
        for event in events:
            ledger.append([event])
        start = time.perf_counter()
        info = ledger.roll()
        elapsed = time.perf_counter() - start
        size = os.path.getsize(info.url)
    return points / elapsed, size / points, size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    print(f"ledger benchmark: {os.cpu_count()} CPUs, medians of {args.repeats} repeats\n")
    print(f"{'metrics/event':>13} {'durability':>10} {'callers':>7} {'events/s':>12} {'points/s':>14}")
    for metrics_per_event, per_caller_total in ((1, 4000), (1000, 1600)):
        for durability in ("fsync", "os"):
            for callers in (1, 8):
                per_caller = max(10, int(per_caller_total * scale) // callers)
                rates = [
                    append_rate(durability, callers, metrics_per_event, per_caller)
                    for _ in range(args.repeats)
                ]
                rate = statistics.median(rates)
                print(
                    f"{metrics_per_event:>13} {durability:>10} {callers:>7} {rate:>12,.0f} "
                    f"{rate * metrics_per_event:>14,.0f}"
                )
    points = int(1_000_000 * scale)
    results = [roll_and_size(points) for _ in range(max(1, args.repeats // 2))]
    roll_rate = statistics.median(r[0] for r in results)
    per_point = statistics.median(r[1] for r in results)
    print(f"\nroll WAL -> segment: {roll_rate:,.0f} points/s ({points:,} points in 1,000-metric events)")
    print(f"segment size: {per_point:.2f} bytes per metric point ({results[0][2]:,} bytes for {points:,})")


if __name__ == "__main__":
    main()
