"""First paint of the web page in chromium, on a cold cache: a 10,000-run table, and a sweep of
200 runs with charts, before and after plotly.js (4.8 MB) left the critical path.

Part 1 appends N finished runs to a fresh store (two params, a tag and two metrics each, with a
few distinct values so sorting and filtering have work to do) and loads the experiment page.
Part 2 appends a sweep (200 runs with 300 steps of loss and val_acc each) and loads its 200-run
table, a run page with charts, a 10-run comparison and the chart view, each twice per round:
"after" as the server sends it (charts.js fetches plotly.js after the first paint), "before"
with the page's <head> given back the deferred plotly.js tag the pages had, so both are measured
in the same run against the same server. Each load is a new browser context (no cached CSS or
JS). Reported: medians of first paint and first contentful paint (the browser's own measures,
from navigation start), of the server's time for the HTML, and of the time until charts are drawn.

    python benchmarks/bench_web.py [--runs 10000] [--sweep-runs 200] [--loads 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from harness import ServerProcess, free_port, trackledger_command

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
# The paint entry can land just after the load event: wait for it rather than read it once.
PAINT = """(name) => new Promise((resolve) => new PerformanceObserver((list) => {
  const entry = list.getEntriesByName(name)[0];
  if (entry) resolve(entry.startTime);
}).observe({ type: "paint", buffered: true }))"""
FIRST_CONTENTFUL_PAINT = f"({PAINT})('first-contentful-paint')"
# The pages' <head> before charts.js: plotly.js as a deferred script, run before DOMContentLoaded.
OLD_HEAD = '<script src="/vendor/plotly.min.js" defer></script>'
STEPS = 300


def start_server(store: Path) -> tuple[ServerProcess, str]:
    """A server on ``store``, its log next to it; its URL."""
    port = free_port()
    command = trackledger_command(store, port, "--log-level", "warning")
    return ServerProcess("trackledger", command, port, store.parent).start(), f"http://127.0.0.1:{port}"


def new_experiment(experiment_id: str, name: str, now: int):
    from trackledger.ledger import new_event_id
    from trackledger.ledger.events import ExperimentCreated

    return ExperimentCreated(
        id=new_event_id(),
        experiment_id=experiment_id,
        actor="bench",
        name=name,
        artifact_location=f"mlflow-artifacts:/{experiment_id}",
        creation_time=now,
    )


def append_in_chunks(store: Path, events: list, chunk: int) -> None:
    """Append to the store's ledger directly (the server catches up from it on start)."""
    from trackledger.ledger import Ledger

    ledger = Ledger(str(store), store / ".state")
    for at in range(0, len(events), chunk):
        ledger.append(events[at : at + chunk])
    ledger.close()


def write_runs(store: Path, n: int) -> str:
    """N finished runs appended straight to the ledger (the server catches up from it on start):
    this measures reading pages, so the store is filled without 30,000 HTTP calls."""
    from trackledger.ledger import new_event_id
    from trackledger.ledger.events import (
        BatchLogged,
        Metric,
        Param,
        RunCreated,
        RunUpdated,
        Tag,
    )

    experiment_id, now = "1", int(time.time() * 1000)
    events = [new_experiment(experiment_id, "bench-web", now)]
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
    append_in_chunks(store, events, 5_000)
    return experiment_id


def write_sweep(store: Path, n: int) -> tuple[str, list[str]]:
    """A sweep of N runs with 300 steps of loss and val_acc each, appended to the ledger (the
    server catches up from it on start); returns the experiment id and the run ids."""
    from trackledger.ledger import new_event_id
    from trackledger.ledger.events import (
        BatchLogged,
        Metric,
        Param,
        RunCreated,
        RunUpdated,
    )

    experiment_id, now = "1", int(time.time() * 1000)
    events = [new_experiment(experiment_id, "bench-sweep", now)]
    run_ids = []
    for i in range(n):
        run_id, start = uuid.uuid4().hex, now + i * 60_000
        run_ids.append(run_id)
        keys = {"experiment_id": experiment_id, "run_id": run_id, "actor": "bench"}
        rate = 0.005 + (i % 17) / 400
        metrics = [Metric("loss", 2.3 * (1 - rate) ** s, start + s * 200, s) for s in range(STEPS)]
        metrics += [Metric("val_acc", 0.9 - 0.8 * (1 - rate) ** s, start + s * 200, s) for s in range(STEPS)]
        params = [Param("lr", str(10 ** -(1 + i % 4))), Param("depth", str(2 + i % 10))]
        params.append(Param("optimizer", ("adam", "sgd", "rmsprop")[i % 3]))
        events += [
            RunCreated(
                id=new_event_id(),
                **keys,
                name=f"trial-{i:03d}",
                user_id="bench",
                start_time=start,
                artifact_uri=f"mlflow-artifacts:/1/{run_id}/artifacts",
            ),
            BatchLogged(id=new_event_id(), **keys, params=params, metrics=metrics),
            RunUpdated(id=new_event_id(), **keys, status="FINISHED", end_time=start + STEPS * 200),
        ]
    append_in_chunks(store, events, 600)  # a sweep's events are large: 600 points each
    return experiment_id, run_ids


def _with_old_head(route) -> None:
    """The page as the server sends it, with plotly.js put back in its <head> (the "before")."""
    response = route.fetch()
    html = response.text()
    if "/static/charts.js" in html:
        html = html.replace("</head>", OLD_HEAD + "\n</head>", 1)
    route.fulfill(response=response, body=html)


def measure_charts(url: str, path: str, loads: int, before: bool) -> dict[str, list[float]]:
    """Cold loads of ``path``: first paint, first contentful paint, HTML time and charts drawn."""
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {"fp": [], "fcp": [], "html": [], "charts": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()
            if before:
                page.route(
                    lambda u: u.split("?")[0].rstrip("/") == (url + path).split("?")[0], _with_old_head
                )
            page.goto(url + path, wait_until="commit")
            found["fcp"].append(page.evaluate(FIRST_CONTENTFUL_PAINT))
            found["fp"].append(page.evaluate(f"({PAINT})('first-paint')"))
            page.wait_for_selector(".js-plotly-plot", state="attached", timeout=120_000)
            found["charts"].append(page.evaluate("performance.now()"))
            nav = page.evaluate("JSON.parse(JSON.stringify(performance.getEntriesByType('navigation')[0]))")
            found["html"].append(nav["responseEnd"] - nav["requestStart"])
            context.close()
        browser.close()
    return found


def sweep_report(url: str, experiment_id: str, run_ids: list[str], loads: int) -> None:
    compared = run_ids[:10]
    compare = "/compare?" + "&".join(f"run={run_id}" for run_id in compared)
    pages = [
        (f"{len(run_ids)}-run table", f"/experiments/{experiment_id}?per=200", False),
        ("run page with charts", f"/runs/{run_ids[0]}", True),
        (f"compare {len(compared)} runs", compare, True),
        (f"chart view, {len(run_ids)} runs", f"/experiments/{experiment_id}/charts", True),
    ]
    print(f"cold loads, medians of {loads} (ms from navigation start)")
    for label, path, charts in pages:
        for before in (True, False) if charts else (False,):
            if charts:
                found = measure_charts(url, path, loads, before)
            else:
                paints, server = measure(url, path, loads)
                found = {"fcp": paints, "html": server}
            median = {name: statistics.median(values) for name, values in found.items() if values}
            when = ("before" if before else "after ") if charts else "      "
            drawn = f"; charts drawn {median['charts']:7.1f}" if "charts" in median else ""
            first = f"first paint {median['fp']:7.1f}; " if "fp" in median else ""
            print(
                f"{label:22s} {when} {first}first contentful paint {median['fcp']:7.1f} "
                f"(max {max(found['fcp']):7.1f}); HTML {median['html']:6.1f}{drawn}"
            )


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
    parser.add_argument("--runs", type=int, default=10_000, help="runs of part 1 (0: skip it)")
    parser.add_argument("--sweep-runs", type=int, default=200, help="runs of part 2 (0: skip it)")
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    if args.sweep_runs:
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "data"
            experiment_id, run_ids = write_sweep(store, args.sweep_runs)
            server, url = start_server(store)
            try:
                sweep_report(url, experiment_id, run_ids, args.loads)
            finally:
                server.stop()
    if not args.runs:
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "data"
        experiment_id = write_runs(store, args.runs)
        server, url = start_server(store)
        try:
            for label, path in (
                ("runs table, default sort", f"/experiments/{experiment_id}"),
                ("runs table, sorted by a metric", f"/experiments/{experiment_id}?sort=m:accuracy&dir=desc"),
                ("runs table, filtered", f"/experiments/{experiment_id}?filter=params.layers+%3D+%273%27"),
                ("experiments list", "/"),
            ):
                paints, html_ms = measure(url, path, args.loads)
                print(
                    f"{label:32s} first paint median {statistics.median(paints):7.1f} ms "
                    f"(min {min(paints):.1f}, max {max(paints):.1f}); "
                    f"HTML from the server median {statistics.median(html_ms):.1f} ms"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
