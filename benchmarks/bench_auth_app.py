"""What ``--auth`` adds to the server's own work per request, measured without HTTP and without
the disk: the ASGI app is called in this process (``--durability os``), one app without auth and
one with it (a non-admin over HTTP Basic, as ``bench_auth.py``), in alternating repeats.

Wall-clock ratios over HTTP (``bench_auth.py``) are dominated by the WAL's fsync and by whatever
else runs on the machine; this isolates the middleware, credential cache, guard and handlers.
Each repeat times a block of requests; the figure is the fastest repeat's time per request (the
minimum is what neighbours did not disturb), and "+us" is auth on minus auth off.

    python benchmarks/bench_auth_app.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

API = "/api/2.0/mlflow"
BLOCKS = {"log-metric": 200, "log-batch": 10, "search": 10}  # requests per timed block


class App:
    def __init__(self, root: Path, auth: bool) -> None:
        from trackledger.api.app import create_app
        from trackledger.api.auth.secrets import hash_password
        from trackledger.api.settings import Settings
        from trackledger.api.writes.envelope import Origin
        from trackledger.ledger.events import UserCreated

        self.app = create_app(
            Settings(store=str(root / ("on" if auth else "off")), auth=auth, durability="os")
        )
        self.ctx = self.app.state.ctx
        self.ctx.open()
        self.headers: list[tuple[bytes, bytes]] = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
        ]
        if auth:
            hashed = hash_password("bench-password-1")
            # the event itself (not writes.accounts), so the script also measures earlier trees
            self.ctx.writes.commit(
                Origin(actor="bench"),
                lambda _index, envelope: [UserCreated(**envelope(0), username="bench", password_hash=hashed)],
            )
            credential = base64.b64encode(b"bench:bench-password-1")
            self.headers.append((b"authorization", b"Basic " + credential))
        self.step = 0

    async def post(self, path: str, body: bytes) -> dict:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": API + path, "raw_path": (API + path).encode(), "query_string": b"",
            "root_path": "", "headers": self.headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 5000),
        }  # fmt: skip
        await self.app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"{path}: {sent[0]['status']} {sent[1]['body'][:200]!r}")
        return json.loads(sent[1]["body"] or b"{}")

    async def seed(self) -> None:
        self.experiment_id = (await self.post("/experiments/create", b'{"name": "bench"}'))["experiment_id"]
        run = json.dumps({"experiment_id": self.experiment_id}).encode()
        self.run_id = (await self.post("/runs/create", run))["run"]["info"]["run_id"]
        for _ in range(100):
            await self.post("/runs/create", run)

    def bodies(self, workload: str, count: int) -> tuple[str, list[bytes]]:
        if workload == "search":
            query = {"experiment_ids": [self.experiment_id], "max_results": 100}
            return "/runs/search", [json.dumps(query).encode()] * count
        bodies = []
        for _ in range(count):
            self.step += 1
            if workload == "log-metric":
                body = {"run_id": self.run_id, "key": "loss", "value": 0.5, "timestamp": 0, "step": self.step}
            else:
                metrics = [
                    {"key": "acc", "value": 0.5, "timestamp": 0, "step": self.step * 1000 + i}
                    for i in range(1000)
                ]
                body = {"run_id": self.run_id, "metrics": metrics}
            bodies.append(json.dumps(body).encode())
        return f"/runs/{workload}", bodies

    async def time_block(self, workload: str) -> float:
        """Microseconds per request of one block."""
        path, bodies = self.bodies(workload, BLOCKS[workload])
        self.ctx.projection.flush()  # a search first waits for the points logged before it: not timed
        started = time.perf_counter()
        for body in bodies:
            await self.post(path, body)
        return (time.perf_counter() - started) / len(bodies) * 1e6


async def run(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        apps = {"off": App(Path(tmp), False), "on": App(Path(tmp), True)}
        try:
            for app in apps.values():
                await app.seed()
            best = {(mode, w): float("inf") for mode in apps for w in BLOCKS}
            for _ in range(repeats):
                for workload in BLOCKS:
                    for mode, app in apps.items():
                        best[(mode, workload)] = min(best[(mode, workload)], await app.time_block(workload))
        finally:
            for app in apps.values():
                app.ctx.close()
    print(f"{'fastest repeat, us per request':<32}{'auth off':>10}{'auth on':>10}{'+us':>8}{'on/off':>8}")
    for workload in BLOCKS:
        off, on = best[("off", workload)], best[("on", workload)]
        print(f"  {workload:<30}{off:>10.1f}{on:>10.1f}{on - off:>8.1f}{on / off:>8.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    asyncio.run(run(ap.parse_args().repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
