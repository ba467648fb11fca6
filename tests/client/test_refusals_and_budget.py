"""What the server refuses is raised at ``end_run``; past its disk budget the spool drops the
oldest metric points (and says so), never params, tags or run state."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from mlflow import MlflowClient

from tests.client.conftest import API, Script, ServerProcess, free_port, plugin_env

pytestmark = pytest.mark.e2e

REFUSED = textwrap.dedent(
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment("refusals")
    try:
        with mlflow.start_run() as run:
            print("RUN", run.info.run_id)
            mlflow.log_param("C", "1")
            mlflow.log_param("C", "2")  # a param never changes value: the server refuses it
            mlflow.log_metric("after", 1.0)
    except MlflowException as e:
        print("RAISED", e.error_code)
    """
)
OVER_BUDGET = textwrap.dedent(
    """
    import mlflow

    mlflow.set_experiment("budget")
    with mlflow.start_run() as run:
        print("RUN", run.info.run_id)
        mlflow.log_param("layers", "3")
        for step in range(int(__import__("sys").argv[1])):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 1000 == 0:
                mlflow.set_tag(f"checkpoint{step}", "saved")
    """
)


def test_a_refused_write_is_raised_at_end_run_and_the_rest_arrives(tmp_path, server):
    port = int(server.url.rsplit(":", 1)[1])
    code, out, err = Script(
        tmp_path / "refused.py", REFUSED, [], plugin_env(port, tmp_path / "spool")
    ).finish()
    assert code == 0, err
    assert "RAISED INVALID_PARAMETER_VALUE" in out
    assert "refused" in err  # logged as well
    run = MlflowClient(server.url).get_run(out.split("RUN ")[1].split()[0])
    assert run.data.params == {"C": "1"}
    assert run.data.metrics == {"after": 1.0}  # logged with the refused param, kept
    assert run.info.status == "FINISHED"


def test_past_the_disk_budget_the_oldest_points_go_and_everything_else_stays(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    steps = 30_000
    env = plugin_env(port, spool, TRACKLEDGER_SPOOL_BUDGET="256K")
    code, out, err = Script(tmp_path / "budget.py", OVER_BUDGET, [str(steps)], env).finish()
    assert code == 0, err
    assert "past its disk budget" in err
    assert "metric points dropped past the disk budget" in err  # the exit line says it again
    run_id = out.split("RUN ")[1].split()[0]
    server = ServerProcess(str(tmp_path / "data"), tmp_path, port=port).start()
    try:
        synced = subprocess.run(
            [sys.executable, "-m", "trackledger", "sync", str(spool)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert synced.returncode == 0, synced.stderr
        client = MlflowClient(server.url)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params == {"layers": "3"}
        assert {k for k in run.data.tags if k.startswith("checkpoint")} == {
            f"checkpoint{s}" for s in range(0, steps, 1000)
        }
        kept = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
        assert 0 < len(kept) < steps
        assert kept == list(range(steps - len(kept), steps))  # the oldest went, the newest stayed
    finally:
        server.stop()


IN_A_DELETED_EXPERIMENT = textwrap.dedent(
    """
    import sys
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        with mlflow.start_run(experiment_id=sys.argv[1]):
            for step in range(3000):
                mlflow.log_metric("loss", 1.0, step=step)
    except MlflowException as e:
        print("RAISED", e.error_code)
    """
)


def test_a_refused_run_is_said_once_not_once_per_point(tmp_path, server, http):
    experiment = http.post(f"{API}/experiments/create", json={"name": "deleted-later"}).json()[
        "experiment_id"
    ]
    http.post(f"{API}/experiments/delete", json={"experiment_id": experiment})
    port = int(server.url.rsplit(":", 1)[1])
    script = Script(
        tmp_path / "deleted.py", IN_A_DELETED_EXPERIMENT, [experiment], plugin_env(port, tmp_path / "spool")
    )
    code, out, err = script.finish()
    assert code == 0, err
    assert "RAISED INVALID_PARAMETER_VALUE" in out
    assert err.count("refused a logged") == 1, err[-3000:]
    assert "not shipped yet" not in err  # the rest of the run was given up at once, not resent
