"""``trackledger sql``: the same query offline from the store and through a server's /api/sql."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.api.conftest import ServerProcess, trackledger

QUERY = "SELECT key, value FROM params ORDER BY key"


def _log_params(url: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment_id = client.create_experiment("sql-command")
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "C", "0.1")
    client.log_param(run.info.run_id, "solver", "liblinear")


def test_sql_through_the_server_in_every_format(tmp_path):
    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    try:
        _log_params(server.url)
        as_json = trackledger("sql", "--server", server.url, "--format", "json", QUERY)
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout) == [
            {"key": "C", "value": "0.1"},
            {"key": "solver", "value": "liblinear"},
        ]
        as_table = trackledger("sql", "--server", server.url, QUERY)
        assert as_table.returncode == 0, as_table.stderr
        assert "liblinear" in as_table.stdout and "solver" in as_table.stdout
        as_csv = trackledger("sql", "--server", server.url, "--format", "csv", QUERY)
        assert as_csv.stdout.splitlines()[1:] == ['"C","0.1"', '"solver","liblinear"']
        out = tmp_path / "params.parquet"
        as_parquet = trackledger("sql", "--server", server.url, "--format", "parquet", "-o", str(out), QUERY)
        assert as_parquet.returncode == 0, as_parquet.stderr
        assert pq.read_table(out).column("value").to_pylist() == ["0.1", "liblinear"]
        refused = trackledger("sql", "--server", server.url, "SELECT * FROM read_csv('/etc/passwd')")
        assert refused.returncode == 1 and "error" in refused.stderr
    finally:
        assert server.stop() == 0


def test_sql_offline_reads_the_store_after_shutdown(tmp_path):
    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    _log_params(server.url)
    assert server.stop() == 0
    result = trackledger("sql", "--store", str(tmp_path / "data"), "--format", "json", QUERY)
    assert result.returncode == 0, result.stderr
    assert [row["value"] for row in json.loads(result.stdout)] == ["0.1", "liblinear"]
    bad = trackledger("sql", "--store", str(tmp_path / "data"), "SELECT * FROM no_such_table")
    assert bad.returncode == 1 and "no_such_table" in bad.stderr
