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
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

API = "/api/2.0/mlflow"
USER, PASSWORD = "bench", "bench-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Conn:
    def __init__(self, port: int, headers: dict) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.http.connect()
        self.http.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Content-Type": "application/json", **headers}

    def post(self, path: str, body: dict | bytes) -> dict:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.http.request("POST", API + path, body=data, headers=self.headers)
        resp = self.http.getresponse()
        payload = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {payload[:200]!r}")
        return json.loads(payload or b"{}")


def start(store: Path, args: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trackledger", "server", "--store", str(store), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def loop_cpu_ns(pid: int) -> int | None:
    """CPU time of the server's main thread (its event loop) so far; None off Linux."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return None


def setup(root: Path, auth: bool) -> tuple[subprocess.Popen, int, dict]:
    store = root / ("on" if auth else "off")
    headers = {}
    if auth:
        admin_password = root / "admin-password"
        admin_password.write_text("admin-password-1\n")
        subprocess.run(
            [sys.executable, "-m", "trackledger", "users", "create", "admin", "--admin",
             "--password-file", str(admin_password), "--store", str(store)],
            check=True, capture_output=True,
        )  # fmt: skip
    proc, port = start(store, ["--auth"] if auth else [])
    if auth:
        admin = Conn(port, {"Authorization": "Basic " + base64.b64encode(b"admin:admin-password-1").decode()})
        admin.post("/users/create", {"username": USER, "password": PASSWORD})
        headers = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    return proc, port, headers


def one_round(
    pid: int, port: int, headers: dict, counts: argparse.Namespace, tag: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall ms per request, and the server event loop's mean CPU us per request."""
    conn = Conn(port, headers)
    experiment_id = conn.post("/experiments/create", {"name": f"bench-{tag}"})["experiment_id"]
    run_id = conn.post("/runs/create", {"experiment_id": experiment_id, "start_time": 0})["run"]["info"][
        "run_id"
    ]
    for i in range(200):  # runs to search over
        conn.post("/runs/create", {"experiment_id": experiment_id, "start_time": i, "run_name": f"r{i}"})
    times: dict[str, list[float]] = {"log-metric": [], "log-batch": [], "search": []}
    cpu: dict[str, float] = {}
    cpu_start = loop_cpu_ns(pid)
    for step in range(counts.metrics):
        body = {"run_id": run_id, "key": "loss", "value": 1.0 / (step + 1), "timestamp": step, "step": step}
        started = time.perf_counter()
        conn.post("/runs/log-metric", body)
        times["log-metric"].append(time.perf_counter() - started)
    cpu_start = _cpu_per_request(cpu, "log-metric", pid, cpu_start, counts.metrics)
    for batch in range(counts.batches):
        metrics = [
            {"key": "acc", "value": i * 0.001, "timestamp": i, "step": batch * 1000 + i} for i in range(1000)
        ]
        body = json.dumps({"run_id": run_id, "metrics": metrics}).encode()
        started = time.perf_counter()
        conn.post("/runs/log-batch", body)
        times["log-batch"].append(time.perf_counter() - started)
    cpu_start = _cpu_per_request(cpu, "log-batch", pid, cpu_start, counts.batches)
    search = {
        "experiment_ids": [experiment_id],
        "max_results": 100,
        "order_by": ["attributes.start_time DESC"],
    }
    for _ in range(counts.searches):
        started = time.perf_counter()
        conn.post("/runs/search", search)
        times["search"].append(time.perf_counter() - started)
    _cpu_per_request(cpu, "search", pid, cpu_start, counts.searches)
    conn.http.close()
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
                    proc, port, headers = servers[mode]
                    wall, cpu = one_round(proc.pid, port, headers, counts, f"{mode}-{i}")
                    rounds[mode].append(wall)
                    cpu_rounds[mode].append(cpu)
        finally:
            for proc, _port, _headers in servers.values():
                proc.terminate()
                proc.wait(timeout=60)
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
