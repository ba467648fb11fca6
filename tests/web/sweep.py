"""A hyperparameter sweep as a team logs one, with the real mlflow client over HTTP.

``log_sweep(url, runs=200)`` logs, in an experiment of its own:

- ``runs`` runs with params ``lr``, ``depth``, ``optimizer``, ``batch_size``, ``dropout`` and 300 steps
  each of ``loss`` and ``val_acc`` (one ``log_batch`` per run; a step every ~200 ms of wall time);
- every 20th run a parent ("search-K") whose next three runs are its children, tagged
  ``mlflow.parentRunId`` and named ``fold-0``, ``fold-1``, ``fold-2`` under every parent;
- every 13th run of the others FAILED after 120 steps;

and, in a second experiment, Alice's and Bob's runs with a single-value ``accuracy``.
Values come from a seeded generator: the same call logs the same numbers every time.
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

STEPS = 300
FAILED_STEPS = 120
CHILDREN = ("fold-0", "fold-1", "fold-2")
PARENT_EVERY = 20
FAILED_EVERY = 13
TEAM_ACCURACY = {"alice": 0.912, "bob": 0.874}


@dataclass
class SweepRun:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    parent_id: str | None = None
    steps: int = STEPS


@dataclass
class Sweep:
    """What ``log_sweep`` logged: ids to look for in the page."""

    experiment_id: str
    experiment_name: str
    runs: list[SweepRun] = field(default_factory=list)
    team_experiment_id: str = ""
    team_runs: dict[str, str] = field(default_factory=dict)  # user -> run id

    def by_name(self, name: str) -> list[SweepRun]:
        return [run for run in self.runs if run.name == name]

    @property
    def parents(self) -> list[SweepRun]:
        parent_ids = {run.parent_id for run in self.runs if run.parent_id}
        return [run for run in self.runs if run.run_id in parent_ids]


def _plan(count: int, rng: random.Random) -> list[dict]:
    """Name, role and params of each run, in logging order (a parent before its children)."""
    plan, parent_index, failures = [], None, 0
    for i in range(count):
        params = {
            "lr": f"{rng.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]):g}",
            "depth": str(rng.randint(2, 12)),
            "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
            "batch_size": str(rng.choice([32, 64, 128, 256])),
            "dropout": f"{rng.choice([0.0, 0.1, 0.2, 0.3, 0.5]):g}",
        }
        position = i % PARENT_EVERY
        entry = {"params": params, "parent": None, "failed": False}
        if position == 0:
            parent_index = i
            entry["name"] = f"search-{i // PARENT_EVERY}"
        elif position <= len(CHILDREN) and parent_index is not None:
            entry["name"] = CHILDREN[position - 1]
            entry["parent"] = parent_index
        else:
            failures += 1
            entry["name"] = f"{params['optimizer']}-d{params['depth']}-{i:03d}"
            entry["failed"] = failures % FAILED_EVERY == 0
        plan.append(entry)
    return plan


def _curves(params: dict[str, str], steps: int, rng: random.Random) -> tuple[list[float], list[float]]:
    """A loss that falls and a validation accuracy that rises, each at a rate set by the params."""
    rate = float(params["lr"]) ** 0.35 * (1.4 if params["optimizer"] == "adam" else 1.0)
    floor = 0.05 + 0.02 * abs(int(params["depth"]) - 7) + float(params["dropout"]) * 0.1
    losses, accuracies = [], []
    for step in range(steps):
        decay = math.exp(-rate * step / 8)
        losses.append(floor + (2.3 - floor) * decay + rng.gauss(0, 0.02))
        accuracies.append(min(1.0, (1 - floor) * (1 - decay) + 0.1 * decay + rng.gauss(0, 0.008)))
    return losses, accuracies


def log_sweep(tracking_uri: str, runs: int = 200, *, name: str = "Sweep", seed: int = 16) -> Sweep:
    """Log the sweep (see the module's docstring) to the server at ``tracking_uri``."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=tracking_uri)
    rng = random.Random(seed)
    experiment_id = client.create_experiment(name)
    plan = _plan(runs, rng)
    curves = [_curves(entry["params"], FAILED_STEPS if entry["failed"] else STEPS, rng) for entry in plan]
    start = 1_764_000_000_000  # fixed, so wall and relative time read the same in every run of the tests

    def log(i: int, parent_id: str | None) -> SweepRun:
        entry = plan[i]
        began = start + i * 90_000
        tags = {"mlflow.user": "sweeper", "sweep": name}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run = client.create_run(experiment_id, start_time=began, tags=tags, run_name=entry["name"])
        run_id = run.info.run_id
        losses, accuracies = curves[i]
        every_ms = 150 + i % 7 * 20
        metrics = [Metric("loss", v, began + s * every_ms, s) for s, v in enumerate(losses)]
        metrics += [Metric("val_acc", v, began + s * every_ms, s) for s, v in enumerate(accuracies)]
        params = [Param(k, v) for k, v in entry["params"].items()]
        client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("stage", "sweep")])
        status = "FAILED" if entry["failed"] else "FINISHED"
        client.set_terminated(run_id, status, end_time=began + len(losses) * every_ms)
        return SweepRun(
            run_id, entry["name"], status, entry["params"], parent_id=parent_id, steps=len(losses)
        )

    # Parents first (their ids go into the children's tags), then everything else four at a time.
    logged: dict[int, SweepRun] = {}
    for i, entry in enumerate(plan):
        if entry["name"].startswith("search-"):
            logged[i] = log(i, None)
    others = [i for i in range(len(plan)) if i not in logged]

    def log_other(i: int) -> SweepRun:
        parent = plan[i]["parent"]
        return log(i, logged[parent].run_id if parent is not None else None)

    with ThreadPoolExecutor(max_workers=4) as pool:
        logged.update(zip(others, pool.map(log_other, others), strict=True))
    created = [logged[i] for i in range(len(plan))]
    sweep = Sweep(experiment_id, name, created)

    sweep.team_experiment_id = client.create_experiment(f"{name} team")
    for user, accuracy in TEAM_ACCURACY.items():
        run = client.create_run(
            sweep.team_experiment_id, tags={"mlflow.user": user}, run_name=f"{user}-model"
        )
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("accuracy", accuracy, start, 0)],
            params=[Param("model", "gbm" if user == "alice" else "logreg")],
        )
        client.set_terminated(run.info.run_id)
        sweep.team_runs[user] = run.info.run_id
    return sweep
