"""First paint of an experiment's runs table with 10,000 runs, in chromium.

Appends N finished runs to a fresh store (two params, a tag and two metrics each, with a few
distinct values so sorting and filtering have work to do), starts a server on it, then loads
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
import uuid
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REPO = Path(__file__).resolve().parents[1]
# The paint entry can land just after the load event: wait for it rather than read it once.
FIRST_CONTENTFUL_PAINT = """new Promise((resolve) => new PerformanceObserver((list) => {
  const entry = list.getEntriesByName("first-contentful-paint")[0];
  if (entry) resolve(entry.startTime);
}).observe({ type: "paint", buffered: true }))"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trackledger",
            "server",
            "--store",
            str(store),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
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


def write_runs(store: Path, n: int) -> str:
    """N finished runs appended straight to the ledger (the server catches up from it on start):
    this measures reading pages, so the store is filled without 30,000 HTTP calls."""
    from trackledger.ledger import Ledger, new_event_id
    from trackledger.ledger.events import (
        BatchLogged,
        ExperimentCreated,
        Metric,
        Param,
        RunCreated,
        RunUpdated,
        Tag,
    )

    experiment_id, now = "1", int(time.time() * 1000)
    events = [
        ExperimentCreated(
            id=new_event_id(),
            experiment_id=experiment_id,
            actor="bench",
            name="bench-web",
            artifact_location="mlflow-artifacts:/1",
            creation_time=now,
        )
    ]
    for i in range(n):
        run_id, start = uuid.uuid4().hex, now + i
        keys = {"experiment_id": experiment_id, "run_id": run_id, "actor": f"user{i % 7}"}
        events += [
            RunCreated(
                id=new_event_id(),
                **keys,
                name=f"run-{i:05d}",
                user_id=f"user{i % 7}",
                start_time=start,
                artifact_uri=f"mlflow-artifacts:/1/{run_id}/artifacts",
            ),
            BatchLogged(
                id=new_event_id(),
                **keys,
                params=[Param("lr", str(10 ** -(i % 5))), Param("layers", str(i % 9))],
                metrics=[Metric("loss", 1 / (1 + i), start), Metric("accuracy", (i % 1000) / 1000, start)],
                tags=[Tag("team", f"t{i % 3}")],
            ),
            RunUpdated(id=new_event_id(), **keys, status="FINISHED", end_time=start + 1000 + i),
        ]
    ledger = Ledger(str(store), store / ".state")
    for at in range(0, len(events), 5_000):
        ledger.append(events[at : at + 5_000])
    ledger.close()
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
            fcp = page.evaluate(FIRST_CONTENTFUL_PAINT)
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
        store = Path(tmp) / "data"
        experiment_id = write_runs(store, args.runs)
        proc, url = start_server(store)
        try:
            for label, path in (
                ("runs table, default sort", f"/experiments/{experiment_id}"),
                ("runs table, sorted by a metric", f"/experiments/{experiment_id}?sort=m:accuracy&dir=desc"),
                ("runs table, filtered", f"/experiments/{experiment_id}?filter=params.layers+%3D+%273%27"),
                ("experiments list", "/"),
            ):
                paints, server = measure(url, path, args.loads)
                print(
                    f"{label:32s} first paint median {statistics.median(paints):7.1f} ms "
                    f"(min {min(paints):.1f}, max {max(paints):.1f}); "
                    f"HTML from the server median {statistics.median(server):.1f} ms"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
