"""``trackledger server``: what stops it from starting is one line of error, before it says it serves."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import API, ServerProcess, free_port, trackledger

pytestmark = pytest.mark.e2e


def one_line_error(result, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "serving" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trackledger "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = trackledger("server", "--store", str(tmp_path / "data"), "--port", str(port), cwd=tmp_path)
    one_line_error(result, f"port {port}", "in use", "--port")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module, with its access log on (the api conftest's ``http`` and ``run_id``
    use it)."""
    workdir = tmp_path_factory.mktemp("server")
    server = ServerProcess(str(workdir / "data"), workdir, args=("--access-log",)).start()
    yield server
    assert server.stop() == 0, server.read_log()


def test_a_second_server_on_the_same_state_dir_is_one_line_before_serving(server):
    port = str(free_port())
    result = trackledger("server", "--store", server.store, "--port", port, cwd=server.workdir)
    one_line_error(result, "state directory", "--state-dir")


def test_rebuild_while_the_server_runs_is_one_line(server):
    result = trackledger("rebuild", "--store", server.store, cwd=server.workdir)
    one_line_error(result, "stop it first")


def test_the_access_log_has_a_line_per_request(server, tmp_path):
    assert httpx.get(server.url + "/health?probe=access-log").status_code == 200
    assert '"GET /health?probe=access-log HTTP/1.1" 200' in server.read_log()
    quiet = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    try:
        assert httpx.get(quiet.url + "/health?probe=access-log").status_code == 200
    finally:
        assert quiet.stop() == 0
    assert "probe=access-log" not in quiet.read_log()


def test_the_server_process_never_loads_pandas(server, http, run_id):
    # pyarrow imports pandas, when installed (the mlflow client needs it), at its first array:
    # a log call makes arrays.
    metric = {"run_id": run_id, "key": "pandas-check", "value": 1.0, "timestamp": 1, "step": 0}
    assert http.post(f"{API}/runs/log-metric", json=metric).status_code == 200
    assert http.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "pandas-check"}
    ).json()
    assert "/pandas/" not in Path(f"/proc/{server.proc.pid}/maps").read_text()
