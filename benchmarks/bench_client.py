"""The logging client (``trackledger+http://``) vs the stock mlflow client, against one server.

1. Per-call cost of ``mlflow.log_metric`` through the stock client (``http://``: a round trip per
   call) and through the plugin (an append to the spool), in the same run; also the plugin's own
   share (its store's ``log_metric``, which the fluent call ends in) and mlflow's fluent floor
   (the same call into a store that does nothing), since mlflow itself spends most of a fluent call
   before it reaches any store.
2. Wall time of a training loop through the plugin (``STEPS`` steps, ``log_metrics`` of three
   metrics each) with the server up, down (nothing listens), and flapping (killed and restarted
   every ``--flap-s`` seconds), each in a fresh process; medians of ``--repeats`` and the ratios to
   "up" from the same run.

    python3 benchmarks/bench_client.py [--calls N] [--steps N] [--repeats N] [--flap-s S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

from harness import ServerProcess, free_port, trackledger_command

PER_CALL = textwrap.dedent(
    """
    import json, sys, time
    import mlflow
    from mlflow.entities import Metric
    from mlflow.store.tracking.abstract_store import AbstractStore
    from mlflow.tracking._tracking_service import utils

    calls, mode = int(sys.argv[1]), sys.argv[2]
    if mode == "noop":
        class Noop(AbstractStore):
            def log_metric(self, run_id, metric):
                pass

        utils._register("noop", lambda store_uri, artifact_uri=None: Noop())
        client = mlflow.MlflowClient("noop://x")
        run_id = "r"
        # mlflow.log_metric needs an active run: time the client call the fluent one ends in
        log = lambda i: client.log_metric(run_id, "loss", 0.5, step=i)
        store = None
    else:
        mlflow.set_experiment("bench-client")
        run = mlflow.start_run()
        log = lambda i: mlflow.log_metric("loss", 0.5, step=i)
        store = utils._get_store()
    for i in range(min(calls, 200)):
        log(i)
    t = time.perf_counter()
    for i in range(calls):
        log(i)
    fluent = (time.perf_counter() - t) / calls * 1e6
    own = None
    if store is not None and mode == "plugin":
        metric = Metric("loss", 0.5, 1, 0)
        t = time.perf_counter()
        for i in range(calls * 10):
            store.log_metric(run.info.run_id, metric)
        own = (time.perf_counter() - t) / (calls * 10) * 1e6
    if store is not None:
        mlflow.end_run()
    print(json.dumps({"fluent_us": fluent, "store_us": own}))
    """
)
LOOP = textwrap.dedent(
    """
    import json, resource, sys, time
    import mlflow

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    steps = int(sys.argv[1])
    t0 = time.perf_counter()
    mlflow.set_experiment("bench-loop")
    with mlflow.start_run():
        mlflow.log_params({"lr": 0.01, "layers": 3})
        t, c = time.perf_counter(), cpu()
        for step in range(steps):
            mlflow.log_metrics({"loss": 1.0 / (step + 1), "acc": step / steps, "lr": 0.01}, step=step)
        loop, loop_cpu = time.perf_counter() - t, cpu() - c
    print(json.dumps({"loop_s": loop, "cpu_s": loop_cpu}))
    """
)


def run_script(code: str, args: list[str], env: dict, workdir: Path) -> dict:
    script = workdir / "bench_script.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="log_metric calls per measurement")
    parser.add_argument("--steps", type=int, default=10_000, help="steps of the training loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flap-s", type=float, default=1.0, help="the flapping server's up and down time")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-client-"))
    port = free_port()
    server = ServerProcess("trackledger", trackledger_command(workdir / "data", port), port, workdir)
    base = {
        **os.environ,
        "TRACKLEDGER_EXIT_FLUSH_S": "0",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    stock = {**base, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}

    def plugin(name: str) -> dict:
        spool = workdir / f"spool-{name}"
        shutil.rmtree(spool, ignore_errors=True)
        return {
            **base,
            "MLFLOW_TRACKING_URI": f"trackledger+http://127.0.0.1:{port}",
            "TRACKLEDGER_SPOOL_DIR": str(spool),
        }

    server.start()
    try:
        per_call = {"stock": [], "plugin": [], "noop": [], "plugin_store": []}
        for _ in range(args.repeats):
            per_call["stock"].append(
                run_script(PER_CALL, [str(args.calls), "stock"], stock, workdir)["fluent_us"]
            )
            got = run_script(PER_CALL, [str(args.calls), "plugin"], plugin("calls"), workdir)
            per_call["plugin"].append(got["fluent_us"])
            per_call["plugin_store"].append(got["store_us"])
            per_call["noop"].append(
                run_script(PER_CALL, [str(args.calls), "noop"], base, workdir)["fluent_us"]
            )
        loops = {"up": [], "down": [], "flapping": []}
        cpu = {"up": [], "down": [], "flapping": []}

        def loop(name: str, spool: str) -> None:
            got = run_script(LOOP, [str(args.steps)], plugin(spool), workdir)
            loops[name].append(got["loop_s"])
            cpu[name].append(got["cpu_s"])

        for _ in range(args.repeats):
            loop("up", "up")
            server.kill()
            loop("down", "down")
            server.start()
            stop = threading.Event()

            def flap(stop=stop):
                while not stop.wait(args.flap_s):
                    server.kill()
                    if stop.wait(args.flap_s):
                        break
                    server.start()

            flapper = threading.Thread(target=flap)
            flapper.start()
            loop("flapping", "flap")
            stop.set()
            flapper.join()
            if server.proc.poll() is not None:
                server.start()
    finally:
        if server.proc.poll() is None:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in per_call.items()}
    print(f"per call, median of {args.repeats} x {args.calls} calls (µs):")
    print(f"  mlflow.log_metric, stock client (http://)        {med['stock']:9.1f}")
    faster = med["stock"] / med["plugin"]
    print(f"  mlflow.log_metric, plugin (trackledger+http://)  {med['plugin']:9.1f}   ({faster:.1f}x faster)")
    print(f"  the plugin's own share (its store's log_metric)  {med['plugin_store']:9.1f}   (target <= 20)")
    print(f"  mlflow's floor: MlflowClient.log_metric, no-op store {med['noop']:5.1f}")
    lm = {k: statistics.median(v) for k, v in loops.items()}
    lc = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"training loop, {args.steps} steps x 3 metrics, median of {args.repeats} (s):")
    for name in ("up", "down", "flapping"):
        print(
            f"  server {name:9} wall {lm[name]:7.2f} (ratio to up {lm[name] / lm['up']:.3f})"
            f"   CPU {lc[name]:7.2f} (ratio to up {lc[name] / lc['up']:.3f})"
        )


if __name__ == "__main__":
    main()
