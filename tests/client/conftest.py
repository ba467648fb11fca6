"""The logging client (``trackledger+http://``) against a real server process: helpers to run
training scripts through it in subprocesses, with the server up, out, or killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.api.conftest import API, ServerProcess, free_port, http, server

__all__ = ["API", "Script", "ServerProcess", "free_port", "http", "plugin_env", "server", "wait_for"]


def plugin_env(port: int, spool: Path, **extra: str) -> dict:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"trackledger+http://127.0.0.1:{port}",
        "TRACKLEDGER_SPOOL_DIR": str(spool),
        "TRACKLEDGER_EXIT_FLUSH_S": "3",
        "TRACKLEDGER_MAX_BACKOFF_S": "1",
        **extra,
    }


class Script:
    """A Python script in a subprocess; ``finish`` returns (exit code, stdout, stderr)."""

    def __init__(self, path: Path, code: str, args: list[str], env: dict):
        path.write_text(code)
        self.proc = subprocess.Popen(
            [sys.executable, str(path), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def wait_for(condition, timeout: float = 120, what: str = "a condition") -> None:
    """Poll until ``condition()`` holds; only bounds a hang (no assertion depends on timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
