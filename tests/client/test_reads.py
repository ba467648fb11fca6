"""Reads go to the server: while it is out they say so at once (they do not hang in retries), and
they reach it again once it is back, even in a process that has nothing to ship."""

from __future__ import annotations

import textwrap

import pytest

from tests.client.conftest import Script, ServerProcess, free_port, plugin_env, wait_for

pytestmark = pytest.mark.e2e

READER = textwrap.dedent(
    """
    import os, sys, time
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        client.search_experiments()
    except MlflowException as e:
        print("OUT", e.error_code, flush=True)
    open(sys.argv[1], "w").close()
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.05)
    deadline = time.monotonic() + 120
    while True:
        try:
            names = [e.name for e in client.search_experiments()]
            break
        except MlflowException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    print("BACK", names, flush=True)
    """
)


def test_reads_say_the_server_is_out_then_reach_it_when_it_is_back(tmp_path):
    port = free_port()
    asked, started = tmp_path / "asked", tmp_path / "started"
    reader = Script(
        tmp_path / "reader.py", READER, [str(asked), str(started)], plugin_env(port, tmp_path / "spool")
    )
    wait_for(asked.exists, what="the reader's first read")
    server = ServerProcess(str(tmp_path / "data"), tmp_path, port=port).start()
    try:
        started.write_text("")
        code, out, err = reader.finish()
        assert code == 0, err
        assert "OUT TEMPORARILY_UNAVAILABLE" in out
        assert "BACK ['Default']" in out
    finally:
        server.stop()
