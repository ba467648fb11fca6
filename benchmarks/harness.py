"""What the benchmarks share: a free loopback port, a keep-alive JSON connection, and a server
process (trackledger's or a peer's) with its process tree's CPU time and memory.

Benchmarks run as scripts (``python3 benchmarks/bench_x.py``), so this module is imported by its
own name from the benchmarks folder."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trackledger_command(store: Path, port: int, *flags: str, python: str = sys.executable) -> list[str]:
    """``python``: the interpreter whose installed trackledger serves (another checkout's venv, to
    compare two versions in one run)."""
    return [python, "-m", "trackledger", "server", "--store", str(store), "--port", str(port), *flags]


class Conn:
    """One keep-alive connection speaking JSON, with Nagle off as a real client has it."""

    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.port = port
        self.headers = headers or {}
        self.connect()

    def connect(self) -> None:
        self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        self.c.connect()
        self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        """``body``: a JSON-able value, or bytes already encoded (kept out of timed loops)."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data is not None else {})}
        try:
            self.c.request(method, path, body=data, headers=headers)
            resp = self.c.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.connect()  # the server closed an idle keep-alive connection: not timed work
            self.c.request(method, path, body=data, headers=headers)
            resp = self.c.getresponse()
        return resp.status, resp.read()

    def ok(self, method: str, path: str, body=None) -> dict:
        status, data = self.call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
        return json.loads(data or b"{}")


class ServerProcess:
    """A server started from ``cmd`` in ``workdir`` (its output in ``<workdir>/<name>.log``), ready
    once ``/health`` answers 200. ``stop`` ends it gracefully (a trackledger WAL rolls into a
    segment), ``kill`` as a crash would."""

    def __init__(self, name: str, cmd: list[str], port: int, workdir: Path, env: dict | None = None):
        self.name, self.cmd, self.port, self.workdir, self.env = name, cmd, port, workdir, env
        self.proc: subprocess.Popen | None = None
        self.peak_rss_mb = 0.0
        self._watching = False

    def start(self) -> ServerProcess:
        log_path = self.workdir / f"{self.name}.log"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if Conn(self.port).call("GET", "/health")[0] == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def processes(self) -> list[psutil.Process]:
        """The server and its children (MLflow's workers are children)."""
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process tree so far."""
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = p.cpu_times()
                total += times.user + times.system
        return total

    def rss_mb(self) -> tuple[float, int]:
        """The process tree's resident memory in MB, and how many processes it has."""
        procs = self.processes()
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total / 2**20, len(procs)

    def watch_peak_rss(self, every_s: float = 0.05) -> None:
        """Sample the process tree's RSS in the background; ``peak_rss_mb`` is the max since the
        last call (a second call starts the peak over)."""
        self.peak_rss_mb = 0.0
        if self._watching:
            return
        self._watching = True

        def sample() -> None:
            while self._watching:
                with contextlib.suppress(psutil.Error):
                    self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb()[0])
                time.sleep(every_s)

        threading.Thread(target=sample, daemon=True).start()

    def stop(self) -> None:
        self._watching = False
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self._watching = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
