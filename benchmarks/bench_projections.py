"""Projection benchmarks: rebuild speed, search latency, history into Arrow, file size, and the
cost of incremental apply of small REST-sized batches into a big projection.

    python3 benchmarks/bench_projections.py [--quick]

Targets (issue 3): rebuild >= 2M points/s at 10M points; search with a filter and an order_by
returning 1,000 runs p50 <= 20 ms at 20k runs and <= 60 ms at 100k; 1M-point history <= 300 ms.
Incremental apply must cost O(batch): the per-batch median into a projection already holding
100k runs / 10M points must match the one into an empty projection.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

import duckdb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.ledger.schema import events_to_table
from trackledger.projections import runs
from trackledger.projections.projection import rebuild_file
from trackledger.projections.run_json import run_details, run_json
from trackledger.projections.schema import create_tables
from trackledger.projections.sources import apply_table


def build_store(root: str, points: int, per_event: int = 1000, runs_count: int = 100) -> Ledger:
    ledger = Ledger(f"{root}/store", f"{root}/state", durability="os", roll_bytes=64 << 20)
    ledger.append(
        [
            E.ExperimentCreated(
                id=E.new_event_id(), experiment_id="1", name="bench", artifact_location="a", creation_time=1
            )
        ]
    )
    ledger.append(
        [
            E.RunCreated(
                id=E.new_event_id(),
                experiment_id="1",
                run_id=f"run{r:05d}",
                name=f"run{r}",
                user_id="u",
                start_time=r,
                artifact_uri="u",
            )
            for r in range(runs_count)
        ]
    )
    steps_per_run = points // runs_count
    rng = random.Random(42)
    batch = []
    for n in range(points // per_event):
        run = f"run{(n * per_event // steps_per_run) % runs_count:05d}"
        base = (n * per_event) % steps_per_run
        # Noisy values, as training curves are: regular ones would flatter the file size.
        values = [1 / (1 + step * 1e-4) + rng.gauss(0, 0.01) for step in range(base, base + per_event)]
        metrics = [
            E.Metric(f"k{step % 4}", value, 1_700_000_000_000 + step, step)
            for step, value in enumerate(values, start=base)
        ]
        batch.append(E.BatchLogged(id=E.new_event_id(), experiment_id="1", run_id=run, metrics=metrics))
        if len(batch) == 100:
            ledger.append(batch)
            batch = []
    if batch:
        ledger.append(batch)
    ledger.roll()
    return ledger


def bench_rebuild(points: int) -> dict:
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        ledger = build_store(root, points)
        print(
            f"  store of {points:,} points written in {time.perf_counter() - started:.1f}s", file=sys.stderr
        )
        path = f"{root}/state/projections.duckdb"
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            counts = rebuild_file(ledger, path)
            timings.append(time.perf_counter() - started)
        assert counts["metrics"] == points, counts
        size = os.path.getsize(path)
        con = duckdb.connect(path, read_only=True)
        run_id = con.execute("SELECT run_id FROM metrics GROUP BY run_id LIMIT 1").fetchone()[0]
        con.close()
        ledger.close()
    seconds = statistics.median(timings)
    return {
        "points": points,
        "rebuild_s": seconds,
        "points_per_s": points / seconds,
        "file_mb": size / 1e6,
        "bytes_per_point": size / points,
        "run": run_id,
    }


def fill_runs(con, count: int) -> None:
    """Synthetic read models straight in SQL: 5 params, 5 tags and 5 latest metrics per run, and
    the runs' JSON derived from them as apply does."""
    create_tables(con)
    con.execute("INSERT INTO experiments VALUES ('1', 'bench', 'a', 'active', 1, 1, 'u')")
    con.execute(f"""INSERT INTO runs SELECT printf('%032x', i), '1', 'run' || i, 'u',
                    CASE WHEN i % 3 = 0 THEN 'RUNNING' ELSE 'FINISHED' END, i, i + 10, 'u', 'active', 'u',
                    NULL
                    FROM range({count}) t(i)""")
    con.execute(f"""INSERT INTO params SELECT printf('%032x', i), 'p' || k, ((i + k) % 10)::VARCHAR
                    FROM range({count}) t(i), range(5) s(k)""")
    con.execute(f"""INSERT INTO run_tags SELECT printf('%032x', i), 't' || k, 'v' || (i % 7)
                    FROM range({count}) t(i), range(5) s(k)""")
    con.execute(f"""INSERT INTO latest_metrics SELECT printf('%032x', i), 'm' || k,
                    hash(i, k) % 1000 / 1000.0, i, 10 FROM range({count}) t(i), range(5) s(k)""")
    derive_run_json(con)


def derive_run_json(con) -> None:
    con.execute(f"""UPDATE runs r SET run_json = {run_json({}, "d.details")}
                    FROM ({run_details("SELECT run_id FROM runs")}) d WHERE r.run_id = d.run_id""")


def bench_search(count: int, repeats: int = 30) -> dict:
    """The server's search: a filter and an order_by over a checkpointed file, 1,000 runs as the
    JSON the response carries; and the same page decoded into Python dicts."""
    search = {
        "filter": "metrics.m0 > 0.2 AND params.p1 != '3'",
        "order_by": ["metrics.m1 DESC"],
        "max_results": 1000,
    }
    with tempfile.TemporaryDirectory() as root:
        con = duckdb.connect(f"{root}/search.duckdb")
        fill_runs(con, count)
        con.execute("CHECKPOINT")
        runs.search_runs_json(con, ["1"], **search)
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            text, _token = runs.search_runs_json(con, ["1"], **search)
            timings.append(time.perf_counter() - started)
        dict_timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            found = runs.decode_runs(runs.search_runs_json(con, ["1"], **search)[0])
            dict_timings.append(time.perf_counter() - started)
        con.close()
    assert len(found) == 1000 and text.count(b'"run_uuid"') == 1000
    return {
        "runs": count,
        "p50_ms": statistics.median(timings) * 1000,
        "dicts_p50_ms": statistics.median(dict_timings) * 1000,
    }


def bench_history(points: int = 1_000_000, repeats: int = 7) -> dict:
    con = duckdb.connect()
    create_tables(con)
    con.execute(f"""INSERT INTO metrics SELECT 'run0', 'loss', random(), 1700000000000 + i, i,
                    NULL, NULL, NULL, 1
                    FROM range({points}) t(i)""")
    con.execute(f"""INSERT INTO metrics SELECT 'run' || (i % 50 + 1), 'loss', random(), i, i,
                    NULL, NULL, NULL, 1
                    FROM range({points * 5}) t(i)""")
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        table = runs.metric_history_arrow(con, ["run0"], ["loss"])
        timings.append(time.perf_counter() - started)
    assert table.num_rows == points
    return {"points": points, "p50_ms": statistics.median(timings) * 1000}


def fill_history(con, runs_count: int, points: int) -> None:
    """A big projection for the apply benchmark: runs with params, tags, latest metrics, a dataset
    input, a model input and output, three audit events each, and ``points`` metric points."""
    fill_runs(con, runs_count)
    per_run = points // runs_count
    con.execute(f"""INSERT INTO metrics SELECT printf('%032x', i // {per_run}), 'm' || (i % 5), 1.0, 1,
                    i % {per_run}, NULL, NULL, NULL, i // 100 FROM range({points}) t(i)""")
    con.execute(f"""INSERT INTO dataset_inputs SELECT printf('%032x', i), 'ds', 'd', 'train', NULL, NULL,
                    NULL, NULL, NULL, i FROM range({runs_count}) t(i)""")
    for table in ("model_inputs", "model_outputs"):
        con.execute(
            f"INSERT INTO {table} SELECT printf('%032x', i), 'm-' || i, 0, i FROM range({runs_count}) t(i)"
        )
    con.execute(f"""INSERT INTO events SELECT 'w', i, 'id' || i, i, 'batch_logged', 'u', false, NULL, NULL,
                    '1', printf('%032x', i // 3), NULL, '' FROM range({runs_count * 3}) t(i)""")
    con.execute(f"INSERT INTO checkpoints VALUES ('w', {runs_count * 3})")
    derive_run_json(con)


def rest_batches(count: int, first_seq: int) -> list:
    """What one REST client's runs/create, log-batch (10 metrics, a param) and runs/update become."""
    tables, seq = [], first_seq
    for b in range(count):
        run_id = f"new{b:08d}"
        events = [
            E.RunCreated(
                id=E.new_event_id(),
                experiment_id="1",
                run_id=run_id,
                name=f"n{b}",
                user_id="u",
                start_time=b,
                artifact_uri="u",
                tags=[E.Tag("mlflow.user", "u")],
            ),
            E.BatchLogged(
                id=E.new_event_id(),
                experiment_id="1",
                run_id=run_id,
                params=[E.Param("lr", "0.1")],
                metrics=[E.Metric(f"m{i}", i * 1.0, 5, 1) for i in range(10)],
            ),
            E.RunUpdated(id=E.new_event_id(), run_id=run_id, status="FINISHED", end_time=b + 5),
        ]
        stamped = []
        for event in events:
            seq += 1
            fields = {f: getattr(event, f) for f in event.__struct_fields__}
            stamped.append(
                type(event)(**{**fields, "id": E.new_event_id(), "seq": seq, "ts": seq, "writer": "w"})
            )
        tables.append(events_to_table(stamped))
    return tables


def bench_apply(runs_count: int, points: int, batches: int = 2000) -> dict:
    with tempfile.TemporaryDirectory() as root:
        con = duckdb.connect(f"{root}/apply.duckdb")
        if runs_count:
            fill_history(con, runs_count, points)
        else:
            create_tables(con)
            con.execute("INSERT INTO experiments VALUES ('1', 'bench', 'a', 'active', 1, 1, 'u')")
        con.execute("CHECKPOINT")
        timings = []
        for table in rest_batches(batches, runs_count * 3):
            started = time.perf_counter()
            apply_table(con, table)
            timings.append(time.perf_counter() - started)
        con.close()
    return {
        "runs": runs_count,
        "points": points,
        "p50_ms": statistics.median(timings) * 1000,
        "last_p50_ms": statistics.median(timings[-batches // 10 :]) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M points instead of 10M")
    args = parser.parse_args()
    rebuild = bench_rebuild(1_000_000 if args.quick else 10_000_000)
    print(
        f"rebuild: {rebuild['points']:,} points in {rebuild['rebuild_s']:.2f}s = "
        f"{rebuild['points_per_s'] / 1e6:.2f}M points/s (target >= 2M); "
        f"DuckDB file {rebuild['file_mb']:.1f} MB "
        f"({rebuild['bytes_per_point']:.1f} B/point)"
    )
    for count, target in ((20_000, 20), (100_000, 60)):
        result = bench_search(count)
        print(
            f"search: {count:,} runs, filter + order_by, 1,000 runs as JSON: p50 {result['p50_ms']:.1f} ms "
            f"(target <= {target} ms); as Python dicts {result['dicts_p50_ms']:.1f} ms"
        )
    for count, points in (
        (0, 0),
        (10_000 if args.quick else 100_000, 1_000_000 if args.quick else 10_000_000),
    ):
        result = bench_apply(count, points, 200 if args.quick else 2000)
        print(
            f"apply: run + log-batch (10 metrics) + update into {count:,} runs / {points:,} points: "
            f"p50 {result['p50_ms']:.1f} ms per batch (last 10%: {result['last_p50_ms']:.1f} ms)"
        )
    history = bench_history()
    print(
        f"history: {history['points']:,} points into Arrow: p50 {history['p50_ms']:.0f} ms (target <= 300 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
