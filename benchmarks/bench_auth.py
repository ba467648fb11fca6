"""What ``--auth`` costs: log-metric, log-batch and search-runs on two servers in one run, one
without auth and one with it (a non-admin user over HTTP Basic, so every request is authenticated
from the credential cache and permission-checked, and each search is filtered by the user's scope).

The two servers are measured in alternating rounds (off, on, off, on, ...) so that a noisy
neighbour slows both alike; the figures are medians of the per-round medians, and the ratio is
auth on / auth off. Keep-alive ``http.client`` connections with TCP_NODELAY, as a training loop's.

Besides the wall time a client sees, each request's CPU time on the server's event loop (the
thread that runs uvicorn, the middleware, the guard and the handlers; read from Linux's
``/proc/PID/task/PID/schedstat``, in ns) is reported: what auth adds lands there, and it moves far
less than wall time when other processes compete for the cores.

    python benchmarks/bench_auth.py [--rounds 5] [--metrics 300] [--batches 30] [--searches 30]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Conn, ServerProcess, free_port, trackledger_command

API = "/api/2.0/mlflow"
USER, PASSWORD = "bench", "bench-password-1"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def loop_cpu_ns(pid: int) -> int | None:
    """CPU time of the server's main thread (its event loop) so far; None off Linux."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return None


def setup(root: Path, auth: bool) -> tuple[ServerProcess, dict]:
    """A server without auth, or with it and a non-admin user; the headers its requests carry."""
    mode = "on" if auth else "off"
    store = root / mode
    if auth:
        admin_password = root / "admin-password"
        admin_password.write_text("admin-password-1\n")
        subprocess.run(
            [sys.executable, "-m", "trackledger", "users", "create", "admin", "--admin",
             "--password-file", str(admin_password), "--store", str(store)],
            check=True, capture_output=True,
        )  # fmt: skip
    port = free_port()
    command = trackledger_command(store, port, *(["--auth"] if auth else []))
    server = ServerProcess(f"auth-{mode}", command, port, root).start()
    if not auth:
        return server, {}
    admin = Conn(port, basic("admin", "admin-password-1"))
    admin.ok("POST", f"{API}/users/create", {"username": USER, "password": PASSWORD})
    return server, basic(USER, PASSWORD)


def one_round(
    server: ServerProcess, headers: dict, counts: argparse.Namespace, tag: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall ms per request, and the server event loop's mean CPU us per request."""
    pid = server.proc.pid
    conn = Conn(server.port, headers)

    def post(path: str, body: dict | bytes) -> dict:
        return conn.ok("POST", API + path, body)

    experiment_id = post("/experiments/create", {"name": f"bench-{tag}"})["experiment_id"]
    run_id = post("/runs/create", {"experiment_id": experiment_id, "start_time": 0})["run"]["info"]["run_id"]
    for i in range(200):  # runs to search over
        post("/runs/create", {"experiment_id": experiment_id, "start_time": i, "run_name": f"r{i}"})
    times: dict[str, list[float]] = {"log-metric": [], "log-batch": [], "search": []}
    cpu: dict[str, float] = {}
    cpu_start = loop_cpu_ns(pid)
    for step in range(counts.metrics):
        body = {"run_id": run_id, "key": "loss", "value": 1.0 / (step + 1), "timestamp": step, "step": step}
        started = time.perf_counter()
        post("/runs/log-metric", body)
        times["log-metric"].append(time.perf_counter() - started)
    cpu_start = _cpu_per_request(cpu, "log-metric", pid, cpu_start, counts.metrics)
    for batch in range(counts.batches):
        metrics = [
            {"key": "acc", "value": i * 0.001, "timestamp": i, "step": batch * 1000 + i} for i in range(1000)
        ]
        body = json.dumps({"run_id": run_id, "metrics": metrics}).encode()
        started = time.perf_counter()
        post("/runs/log-batch", body)
        times["log-batch"].append(time.perf_counter() - started)
    cpu_start = _cpu_per_request(cpu, "log-batch", pid, cpu_start, counts.batches)
    search = {
        "experiment_ids": [experiment_id],
        "max_results": 100,
        "order_by": ["attributes.start_time DESC"],
    }
    for _ in range(counts.searches):
        started = time.perf_counter()
        post("/runs/search", search)
        times["search"].append(time.perf_counter() - started)
    _cpu_per_request(cpu, "search", pid, cpu_start, counts.searches)
    conn.c.close()
    return {name: statistics.median(values) * 1000 for name, values in times.items()}, cpu


def _cpu_per_request(cpu: dict, name: str, pid: int, start: int | None, count: int) -> int | None:
    now = loop_cpu_ns(pid)
    if start is not None and now is not None:
        cpu[name] = (now - start) / count / 1000
    return now


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--metrics", type=int, default=1500, help="log-metric calls per round")
    ap.add_argument("--batches", type=int, default=150, help="log-batch calls (1,000 points each) per round")
    ap.add_argument("--searches", type=int, default=30, help="search-runs calls (100 of 201 runs) per round")
    counts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        servers = {"off": setup(root, False), "on": setup(root, True)}
        rounds: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        cpu_rounds: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        try:
            for i in range(counts.rounds):
                for mode in ("off", "on"):
                    server, headers = servers[mode]
                    wall, cpu = one_round(server, headers, counts, f"{mode}-{i}")
                    rounds[mode].append(wall)
                    cpu_rounds[mode].append(cpu)
        finally:
            for server, _headers in servers.values():
                server.stop()
    report("median wall per request (ms)", rounds)
    if all(cpu_rounds["off"]):
        report("server loop CPU per request (us)", cpu_rounds)
    return 0


def report(title: str, rounds: dict[str, list[dict[str, float]]]) -> None:
    print(f"{title:<34}{'auth off':>10}{'auth on':>10}{'on/off':>9}")
    for name in ("log-metric", "log-batch", "search"):
        off = statistics.median(r[name] for r in rounds["off"])
        on = statistics.median(r[name] for r in rounds["on"])
        print(f"  {name:<32}{off:>10.2f}{on:>10.2f}{on / off:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
