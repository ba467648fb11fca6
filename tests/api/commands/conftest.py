"""The ``trackledger`` sub-commands run as a user runs them: a subprocess, with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trackledger.ledger import Ledger
from trackledger.ledger.events import BatchLogged, ExperimentCreated, Metric, RunCreated, new_event_id


def trackledger(
    *args: str, cwd: Path | str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The command's result; ``env`` is added to a copy of the environment without TRACKLEDGER_*."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "trackledger", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def log_a_run(ledger: Ledger, points: int = 3) -> None:
    """Experiment 7, its run r1, and ``points`` single-point batches of ``loss``."""
    ledger.append(
        [
            ExperimentCreated(
                id=new_event_id(),
                experiment_id="7",
                name="e",
                artifact_location="a",
                creation_time=1,
                actor="alice",
            )
        ]
    )
    ledger.append(
        [
            RunCreated(
                id=new_event_id(),
                experiment_id="7",
                run_id="r1",
                name="n",
                user_id="alice",
                start_time=1,
                artifact_uri="a",
            )
        ]
    )
    for step in range(points):
        ledger.append(
            [BatchLogged(id=new_event_id(), run_id="r1", metrics=[Metric("loss", 1 / (step + 1), 0, step)])]
        )
