"""First paint of an experiment's runs table with 10,000 runs, in chromium.

Starts a server on a fresh store, logs N runs over the MLflow REST API (a param, a tag and two
metrics each, with a few distinct values so sorting and filtering have work to do), then loads
the experiment page several times in headless chromium and reports the median first-contentful-paint
(the browser's own measure, from navigation start) and the median server time for the HTML.

    python benchmarks/bench_web.py [--runs 10000] [--loads 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "server", "--store", str(store), "--port", str(port),
         "--log-level", "warning"],
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def log_runs(url: str, n: int) -> str:
    api = url + "/api/2.0/mlflow"
    with httpx.Client(timeout=60) as http:
        created = http.post(api + "/experiments/create", json={"name": "bench-web"})
        experiment_id = created.json()["experiment_id"]

    def one(i: int) -> None:
        with httpx.Client(timeout=60) as http:
            now = int(time.time() * 1000)
            run = http.post(api + "/runs/create", json={
                "experiment_id": experiment_id, "run_name": f"run-{i:05d}", "user_id": f"user{i % 7}",
                "start_time": now,
            }).json()["run"]["info"]
            http.post(api + "/runs/log-batch", json={
                "run_id": run["run_id"],
                "params": [
                    {"key": "lr", "value": str(10 ** -(i % 5))}, {"key": "layers", "value": str(i % 9)},
                ],
                "metrics": [
                    {"key": "loss", "value": 1 / (1 + i), "timestamp": now, "step": 0},
                    {"key": "accuracy", "value": (i % 1000) / 1000, "timestamp": now, "step": 0},
                ],
                "tags": [{"key": "team", "value": f"t{i % 3}"}],
            }).raise_for_status()
            http.post(api + "/runs/update", json={
                "run_id": run["run_id"], "status": "FINISHED", "end_time": now + 1000 + i,
            }).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    return experiment_id


def measure(url: str, path: str, loads: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    paints, server_ms = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(loads):
            context = browser.new_context()  # a cold page each time: no cached CSS or JS
            page = context.new_page()
            page.goto(url + path, wait_until="load")
            fcp = page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
            )
            nav = page.evaluate("JSON.parse(JSON.stringify(performance.getEntriesByType('navigation')[0]))")
            paints.append(fcp)
            server_ms.append(nav["responseEnd"] - nav["requestStart"])
            context.close()
        browser.close()
    return paints, server_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "data")
        try:
            started = time.perf_counter()
            experiment_id = log_runs(url, args.runs)
            print(f"logged {args.runs} runs in {time.perf_counter() - started:.1f} s")
            for label, path in (
                ("runs table, default sort", f"/experiments/{experiment_id}"),
                ("runs table, sorted by a metric", f"/experiments/{experiment_id}?sort=m:accuracy&dir=desc"),
                ("runs table, filtered", f"/experiments/{experiment_id}?filter=params.layers+%3D+%273%27"),
                ("experiments list", "/"),
            ):
                paints, server = measure(url, path, args.loads)
                print(f"{label:32s} first paint median {statistics.median(paints):7.1f} ms "
                      f"(min {min(paints):.1f}, max {max(paints):.1f}); "
                      f"HTML from the server median {statistics.median(server):.1f} ms")
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
