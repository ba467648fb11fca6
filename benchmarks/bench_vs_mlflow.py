"""trackledger vs a real ``mlflow server`` (SQLite backend), the same REST workloads on both.

Both servers run on loopback; clients are keep-alive ``http.client`` connections with TCP_NODELAY,
identical for both servers. Loops are bounded by counts, MLflow's smaller where it is ~50x slower
(rates are per second, so the counts do not change the figures). Metric values are noisy curves,
not round numbers, so that bytes per point are what real training logs cost. Memory is the RSS of
each server's whole process tree, at the end and at its peak (sampled every 50 ms). Server CPU per
call is the user + system time of the server's process tree during a workload, divided by its calls.
Last, a 2 GiB artifact goes up and down through each server's artifact proxy. Prints one table with
the ratio.

    python3 benchmarks/bench_vs_mlflow.py [--quick] [--skip-mlflow] [--durability fsync|os] [--artifact-gib N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import Conn, ServerProcess, free_port, trackledger_command

API = "/api/2.0/mlflow"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_run(conn: Conn, exp: str) -> str:
    return conn.ok("POST", f"{API}/runs/create", {"experiment_id": exp, "start_time": now_ms()})["run"][
        "info"
    ]["run_id"]


def noisy(rng: random.Random, step: int) -> float:
    """A training-curve-like value: a decaying loss plus noise, with every bit of a float64 in play,
    so that bytes per point are not flattered by values that compress to nothing."""
    return 1.0 / (1.0 + step * 0.001) + rng.gauss(0.0, 0.01)


def run_workloads(server: ServerProcess, scale: dict) -> tuple[dict, int]:
    """All workloads against one server; returns the figures and the number of metric points logged."""
    port = server.port
    conn = Conn(port)

    def cpu_per_call(started_s: float, calls: int) -> float:
        return (server.cpu_s() - started_s) / calls * 1000

    rng = random.Random(42)
    out: dict = {}
    points = 0
    exp = conn.ok("POST", f"{API}/experiments/create", {"name": f"bench-{time.time_ns()}"})["experiment_id"]
    run_id = new_run(conn, exp)

    lat = []
    cpu0 = server.cpu_s()
    t0 = time.perf_counter()
    for i in range(scale["seq"]):
        s = time.perf_counter()
        conn.ok(
            "POST",
            f"{API}/runs/log-metric",
            {"run_id": run_id, "key": "seq", "value": noisy(rng, i), "timestamp": now_ms(), "step": i},
        )
        lat.append(time.perf_counter() - s)
    out["log-metric sequential (calls/s)"] = scale["seq"] / (time.perf_counter() - t0)
    out["log-metric p50 (ms)"] = statistics.median(lat) * 1000
    out["log-metric sequential: server CPU per call (ms)"] = cpu_per_call(cpu0, scale["seq"])
    points += scale["seq"]

    batches = []  # encoded before the clock starts: the client's JSON encoding is not the server's time
    for b in range(scale["batches"]):
        ts = now_ms()
        steps = [b * 100 + i // 10 for i in range(1000)]
        metrics = [
            {"key": f"k{i % 10}", "value": noisy(rng, step), "timestamp": ts, "step": step}
            for i, step in enumerate(steps)
        ]
        batches.append(json.dumps({"run_id": run_id, "metrics": metrics}).encode())
    cpu0 = server.cpu_s()
    t0 = time.perf_counter()
    for body in batches:
        conn.ok("POST", f"{API}/runs/log-batch", body)
    out["log-batch 1000 metrics (points/s)"] = scale["batches"] * 1000 / (time.perf_counter() - t0)
    out["log-batch: server CPU per call (ms)"] = cpu_per_call(cpu0, scale["batches"])
    points += scale["batches"] * 1000

    errors = []
    calls = scale["conc"]

    def writer(w: int) -> None:
        c = Conn(port)
        for i in range(calls):
            status, body = c.call(
                "POST",
                f"{API}/runs/log-metric",
                {"run_id": run_id, "key": f"w{w}", "value": i * 0.25, "timestamp": now_ms(), "step": i},
            )
            if status != 200:
                errors.append(body)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    cpu0 = server.cpu_s()
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out["8 writers (calls/s)"] = 8 * calls / (time.perf_counter() - t0)
    out["8 writers: server CPU per call (ms)"] = cpu_per_call(cpu0, 8 * calls)
    out["8 writers errors"] = len(errors)
    points += 8 * calls

    cpu0 = server.cpu_s()
    t0 = time.perf_counter()
    for i in range(scale["runs"]):
        conn.ok(
            "POST",
            f"{API}/runs/create",
            {
                "experiment_id": exp,
                "start_time": now_ms(),
                "run_name": f"r{i}",
                "tags": [{"key": "group", "value": "a" if i % 2 else "b"}],
            },
        )
    out["create runs (runs/s)"] = scale["runs"] / (time.perf_counter() - t0)
    out["create runs: server CPU per call (ms)"] = cpu_per_call(cpu0, scale["runs"])

    search = {
        "experiment_ids": [exp],
        "filter": "tags.group = 'a' and attributes.status = 'RUNNING'",
        "order_by": ["attributes.start_time DESC"],
        "max_results": 1000,
        "run_view_type": "ACTIVE_ONLY",
    }
    times = []
    cpu0 = server.cpu_s()
    for _ in range(5):
        s = time.perf_counter()
        found = conn.ok("POST", f"{API}/runs/search", search).get("runs", [])
        times.append(time.perf_counter() - s)
    assert len(found) == min(1000, scale["runs"] // 2), len(found)
    out["search filter+order_by, 1000 of runs (ms)"] = statistics.median(times) * 1000
    out["search: server CPU per call (ms)"] = cpu_per_call(cpu0, 5)

    hist_run = new_run(conn, exp)
    for b in range(100):
        ts = now_ms()
        conn.ok(
            "POST",
            f"{API}/runs/log-batch",
            {
                "run_id": hist_run,
                "metrics": [
                    {"key": "h", "value": noisy(rng, b * 1000 + i), "timestamp": ts, "step": b * 1000 + i}
                    for i in range(1000)
                ],
            },
        )
    points += 100_000
    times = []
    pages = 0
    cpu0 = server.cpu_s()
    for _ in range(3):
        s = time.perf_counter()
        got, token = 0, None
        while True:  # paged as the mlflow client pages: max_results=25000
            q = f"run_id={hist_run}&metric_key=h&max_results=25000" + (
                f"&page_token={token}" if token else ""
            )
            page = conn.ok("GET", f"{API}/metrics/get-history?{q}")
            got += len(page.get("metrics", []))
            pages += 1
            token = page.get("next_page_token")
            if not token:
                break
        times.append(time.perf_counter() - s)
    assert got == 100_000, got
    out["100k-point history (ms)"] = statistics.median(times) * 1000
    out["100k-point history: server CPU per page (ms)"] = cpu_per_call(cpu0, pages)
    return out, points


def artifact_round_trip(server: ServerProcess, gib: float) -> dict:
    """One file of ``gib`` GiB up and down through the artifact proxy, streamed both ways; MB/s
    and the server's peak RSS meanwhile (bounded memory: it must not grow with the file)."""
    conn = Conn(server.port)
    created = conn.ok("POST", f"{API}/experiments/create", {"name": f"artifacts-{time.time_ns()}"})
    exp = created["experiment_id"]
    run_id = new_run(conn, exp)
    size = int(gib * 2**30)
    block = random.Random(7).randbytes(2**20)
    url = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/big.bin"

    def body():
        for start in range(0, size, len(block)):
            yield block[: min(len(block), size - start)]

    server.watch_peak_rss()
    t0 = time.perf_counter()
    conn.c.request("PUT", url, body=body(), headers={"Content-Length": str(size)})
    resp = conn.c.getresponse()
    resp.read()
    assert resp.status == 200, resp.status
    up_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    conn.c.request("GET", url)
    resp = conn.c.getresponse()
    received = 0
    while chunk := resp.read(2**20):
        received += len(chunk)
    assert resp.status == 200 and received == size, (resp.status, received)
    down_s = time.perf_counter() - t0
    label = f"{gib:g} GiB artifact"
    return {
        f"{label} up (MB/s)": size / up_s / 1e6,
        f"{label} down (MB/s)": size / down_s / 1e6,
        f"peak RSS during the {label} (MB)": server.peak_rss_mb,
    }


def measure(server: ServerProcess, scale: dict, artifact_gib: float) -> tuple[dict, int, int]:
    """Every workload against one server, started here and stopped even on failure (never leave a
    server behind); the figures, its process count and the metric points logged."""
    server.start()
    server.watch_peak_rss()
    try:
        figures, points = run_workloads(server, scale)
        figures["RSS of process tree at the end (MB)"], nprocs = server.rss_mb()
        figures["peak RSS of process tree (MB)"] = server.peak_rss_mb
        if artifact_gib:
            figures.update(artifact_round_trip(server, artifact_gib))
    finally:
        server.stop()  # a trackledger WAL rolls into a segment, counted on disk afterwards
    return figures, nprocs, points


def dir_bytes(path: Path, skip: tuple[str, ...] = ()) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skip]
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def disk_per_point(result: tuple[dict, int, int], root: Path, derived: tuple[str, ...] = ()) -> None:
    """Bytes on disk per metric point: of the record alone (without what is ``derived`` from it)
    and of everything but the artifacts."""
    figures, _, points = result
    figures["bytes on disk per point: ledger"] = dir_bytes(root, skip=(*derived, "artifacts")) / points
    figures["bytes on disk per point: all"] = dir_bytes(root, skip=("artifacts",)) / points


def shown(value: float) -> str:
    """Two decimals below 10 (CPU per call is often a fraction of a millisecond), else one."""
    return f"{value:.2f}" if abs(value) < 10 else f"{value:,.1f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller counts (figures are rates, so comparable)")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument(
        "--durability", choices=("fsync", "os"), default="fsync", help="the server's --durability"
    )
    ap.add_argument(
        "--artifact-gib", type=float, default=2.0, help="size of the artifact sent up and down (0: skip)"
    )
    args = ap.parse_args()
    tl_scale = {"seq": 5000, "batches": 300, "conc": 1000, "runs": 2000}
    ml_scale = {"seq": 300, "batches": 50, "conc": 40, "runs": 2000}
    if args.quick:
        tl_scale = {"seq": 1000, "batches": 50, "conc": 200, "runs": 2000}
        ml_scale = {"seq": 100, "batches": 10, "conc": 15, "runs": 2000}

    work = Path(tempfile.mkdtemp(prefix="bench-vs-mlflow-"))
    results = {}
    try:
        port = free_port()
        flags = ("--log-level", "warning", "--durability", args.durability)
        tl = ServerProcess("trackledger", trackledger_command(work / "tl", port, *flags), port, work)
        results["trackledger"] = measure(tl, tl_scale, args.artifact_gib)
        # The ledger is the record; the DuckDB projection in .state is derived from it (rebuildable).
        disk_per_point(results["trackledger"], work / "tl", derived=(".state",))

        if not args.skip_mlflow:
            port = free_port()
            (work / "ml").mkdir()
            cmd = [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{work / 'ml' / 'mlruns.db'}",
                "--artifacts-destination",
                str(work / "ml" / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            results["mlflow"] = measure(ServerProcess("mlflow", cmd, port, work), ml_scale, args.artifact_gib)
            disk_per_point(results["mlflow"], work / "ml")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    tl_fig, tl_n, _ = results["trackledger"]
    ml_fig, ml_n, _ = results.get("mlflow", ({}, 0, 0))
    lower_is_better = ("ms", "(MB)", "bytes", "errors")  # the ratio is MLflow's figure over ours
    print("\n| workload | trackledger | mlflow 3.17.2 + SQLite | ratio |\n|---|---:|---:|---:|")
    for key, value in tl_fig.items():
        other = ml_fig.get(key)
        ratio = ""
        if other and value:
            r = other / value if any(w in key for w in lower_is_better) else value / other
            ratio = f"{r:,.1f}x"
        shown_other = "" if other is None else shown(other)
        print(f"| {key} | {shown(value)} | {shown_other} | {ratio} |")
    print(f"\nprocesses: trackledger {tl_n}, mlflow {ml_n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
