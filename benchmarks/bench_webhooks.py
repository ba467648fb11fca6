"""Webhooks and the event stream against the write path, in one server run.

1. Sequential log-metric calls/s with no webhook, then with three webhooks that hear every kind:
   one to a healthy receiver, one to a closed port (every attempt refused, retried) and one to a
   receiver that never answers (every attempt times out). Delivery runs in worker threads off the
   write path; the ratio says what it costs the writes on this machine. Then with ``--webhooks``
   more healthy ones: calls/s and the server's CPU seconds per 1,000 calls (each logged event is
   read by the webhooks' delivery, whether or not it makes a notification).
2. Delivery latency: from the acknowledgement of ``create_registered_model`` to the healthy
   receiver's receipt, median of N.
3. A stream consumer that never reads: the server's RSS growth while 300k points are logged with
   it open, against the growth without it.

    python benchmarks/bench_webhooks.py [--calls 2000] [--repeats 3] [--latency 50] [--webhooks 10]
        [--python OTHER_VENV/bin/python]  # serve from another checkout, to compare versions
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
from harness import Conn, ServerProcess, free_port, trackledger_command

KINDS = [
    "registered_model.created",
    "model_version.created",
    "run.created",
    "run_tag.set",
    "run.finished",
    "logged_model.created",
]


class Receiver:
    def __init__(self, hang: bool = False):
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hang:
                    time.sleep(3600)
                receiver.arrivals.setdefault(body["data"].get("name", ""), time.monotonic())
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


SETTLE_S = 1.0  # after the calls, for the delivery workers to read what was logged (its CPU counted)


def log_metrics(client: Conn, run_id: str, calls: int) -> float:
    started = time.perf_counter()
    for step in range(calls):
        body = {"run_id": run_id, "key": "loss", "value": 1.0 / (step + 1), "timestamp": 1, "step": step}
        client.ok("POST", "/api/2.0/mlflow/runs/log-metric", body)
    return calls / (time.perf_counter() - started)


def timed_rounds(
    server: ServerProcess, client: Conn, calls: int, repeats: int
) -> tuple[list[float], list[float]]:
    """Calls/s of each round, and the server's CPU seconds per 1,000 calls (the settling included)."""
    rates, cpu = [], []
    for _ in range(repeats):
        run_id = new_run(client)
        before = server.cpu_s()
        rates.append(log_metrics(client, run_id, calls))
        time.sleep(SETTLE_S)
        cpu.append((server.cpu_s() - before) * 1000 / calls)
    return rates, cpu


def figures(values: list[float], digits: int = 0) -> str:
    return f"median {statistics.median(values):,.{digits}f} ({', '.join(f'{x:,.{digits}f}' for x in values)})"


def new_run(client: Conn) -> str:
    return client.ok("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0", "start_time": 1})["run"][
        "info"
    ]["run_id"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=int, default=50)
    parser.add_argument("--webhooks", type=int, default=10, help="healthy webhooks added for the CPU figure")
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose trackledger serves")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    port = free_port()
    flags = ("--webhook-allow-private", "--webhook-timeout", "5", "--webhook-retry-max", "2")
    command = trackledger_command(workdir / "data", port, *flags, python=args.python)
    server = ServerProcess("trackledger", command, port, workdir)
    server.start()
    try:
        client = Conn(port)
        process = psutil.Process(server.proc.pid)

        without, cpu_without = timed_rounds(server, client, args.calls, args.repeats)
        healthy, hanging = Receiver(), Receiver(hang=True)
        closed = f"http://127.0.0.1:{free_port()}/hook"
        for name, url in (("healthy", healthy.url), ("closed", closed), ("hanging", hanging.url)):
            client.ok("POST", "/api/2.0/mlflow/webhooks", {"name": name, "url": url, "events": KINDS})
        with_hooks, cpu_with = timed_rounds(server, client, args.calls, args.repeats)
        more = [Receiver() for _ in range(args.webhooks)]
        for i, receiver in enumerate(more):
            client.ok(
                "POST", "/api/2.0/mlflow/webhooks", {"name": f"h{i}", "url": receiver.url, "events": KINDS}
            )
        with_many, cpu_many = timed_rounds(server, client, args.calls, args.repeats)

        latencies = []
        for i in range(args.latency):
            name = f"m{i}"
            sent = time.monotonic()
            client.ok("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})
            while name not in healthy.arrivals:
                time.sleep(0.002)
            latencies.append((healthy.arrivals[name] - sent) * 1000)

        batch_cpu: list[float] = []

        def grows_by() -> float:
            """MB of server RSS added by logging 300 batches of 1,000 points (and the server's CPU
            seconds for it, delivery's reading of those large events included, in ``batch_cpu``)."""
            before, cpu_before = process.memory_info().rss, server.cpu_s()
            run_id = new_run(client)
            batch = [{"key": "m", "value": float(i), "timestamp": 1, "step": i} for i in range(1000)]
            for _ in range(300):
                client.ok("POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": run_id, "metrics": batch})
            time.sleep(2)
            batch_cpu.append(server.cpu_s() - cpu_before)
            return (process.memory_info().rss - before) / 2**20

        alone = grows_by()
        idle = socket.create_connection(("127.0.0.1", port))
        idle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        idle.sendall(b"GET /api/ledger/stream HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
        stalled = grows_by()
        idle.close()

        a, b, c = (statistics.median(rates) for rates in (without, with_hooks, with_many))
        print(f"log-metric calls/s, no webhook: {figures(without)}")
        print(
            f"log-metric calls/s, 3 webhooks (healthy, refused, hanging): {figures(with_hooks)}; "
            f"ratio {b / a:.2f}"
        )
        print(f"log-metric calls/s, {3 + args.webhooks} webhooks: {figures(with_many)}; ratio {c / a:.2f}")
        for label, cpu in (
            ("no webhook", cpu_without),
            ("3 webhooks", cpu_with),
            (f"{3 + args.webhooks} webhooks", cpu_many),
        ):
            print(f"server CPU s per 1,000 log-metric calls, {label}: {figures(cpu, 2)}")
        print(
            f"delivery latency, request sent to receipt: median {statistics.median(latencies):.0f} ms, "
            f"p90 {statistics.quantiles(latencies, n=10)[-1]:.0f} ms ({len(latencies)} events)"
        )
        print(
            f"server CPU s for 300 log-batches of 1,000 points, {3 + args.webhooks} webhooks: "
            f"{batch_cpu[0]:.2f} (again with a stalled stream consumer: {batch_cpu[1]:.2f})"
        )
        print(
            f"server RSS growth over 300k points logged: {alone:.0f} MB without a stream consumer, "
            f"{stalled:.0f} MB with one that never reads"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
