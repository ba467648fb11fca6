"""A training process killed mid-run: what it spooled is delivered by the next process that uses
the spool, or by ``trackledger sync``, and nothing arrives twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from functools import partial

import pytest
from mlflow import MlflowClient
from mlflow.utils.credentials import get_default_host_creds
from trackledger_client.shipper import Server, Shipper
from trackledger_client.spool import Spool

from tests.client.conftest import Script, ServerProcess, free_port, plugin_env, wait_for

pytestmark = pytest.mark.e2e

POINTS = 5000
KILLED = textwrap.dedent(
    """
    import sys, time
    import mlflow

    mlflow.set_experiment("crash")
    run = mlflow.start_run()
    mlflow.log_param("lr", "0.1")
    for step in range(int(sys.argv[2])):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    open(sys.argv[1], "w").write(run.info.run_id)
    time.sleep(600)  # killed here, the run never ended
    """
)
NEXT = "import mlflow; mlflow.MlflowClient().search_experiments()\n"


def _killed_mid_run(tmp_path, port, spool) -> str:
    marker = tmp_path / "run_id"
    script = Script(tmp_path / "killed.py", KILLED, [str(marker), str(POINTS)], plugin_env(port, spool))
    wait_for(marker.exists, what="the script to log its points")
    script.proc.kill()
    script.finish()
    return marker.read_text()


def _assert_delivered_once(url, run_id):
    client = MlflowClient(url)
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"
    assert run.data.params == {"lr": "0.1"}
    steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
    assert steps == list(range(POINTS))


def test_the_next_process_ships_what_a_killed_one_spooled(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    run_id = _killed_mid_run(tmp_path, port, spool)  # the server is out the whole time
    server = ServerProcess(str(tmp_path / "data"), tmp_path, port=port).start()
    try:
        code, _, err = Script(tmp_path / "next.py", NEXT, [], plugin_env(port, spool)).finish()
        assert code == 0, err
        _assert_delivered_once(server.url, run_id)
        assert not list(spool.glob("*.spool"))
    finally:
        server.stop()


def test_sync_ships_what_a_killed_process_spooled_while_the_server_took_part_of_it(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    server = ServerProcess(str(tmp_path / "data"), tmp_path, port=port).start()
    try:
        run_id = _killed_mid_run(tmp_path, port, spool)
        synced = subprocess.run(
            [sys.executable, "-m", "trackledger", "sync", str(spool)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert synced.returncode == 0, synced.stderr
        _assert_delivered_once(server.url, run_id)
    finally:
        server.stop()


def test_a_request_resent_after_its_answer_was_lost_appends_nothing(tmp_path, server):
    """A crash between the server's answer and the cursor's update: the next shipper resends the
    same range under the same key, and the server takes it once."""
    client = MlflowClient(server.url)
    run_id = client.create_run(client.create_experiment("resend")).info.run_id
    spool = Spool(tmp_path / "spool", server.url, 1 << 30)
    for step in range(3):
        spool.append(["m", run_id, "loss", float(step), 1, step, {}])
    shipper = Shipper(spool, Server(partial(get_default_host_creds, server.url), 30), 1.0)
    segment = spool.snapshot()[-1]
    assert shipper.ship_once()
    assert segment.cursor.shipped == segment.size
    segment.cursor.shipped = 0
    segment.cursor.inflight = (0, segment.size)  # as the cursor stood while the request was out
    assert shipper.ship_once()
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == [0, 1, 2]
    spool.close()
