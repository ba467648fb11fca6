"""``trackledger sql``: the same query offline from the store and through a server's /api/sql."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from trackledger.api.commands.sql import parse_as_of
from trackledger.ledger import Ledger

from tests.api.commands.conftest import command, damage, log_a_run, one_line_error
from tests.api.conftest import ServerProcess, trackledger

QUERY = "SELECT key, value FROM params ORDER BY key"


def _log_params(url: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment_id = client.create_experiment("sql-command")
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "C", "0.1")
    client.log_param(run.info.run_id, "solver", "liblinear")


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_sql_offline_reads_the_store_after_shutdown(tmp_path):
    server = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    _log_params(server.url)
    assert server.stop() == 0
    result = trackledger("sql", "--store", str(tmp_path / "data"), "--format", "json", QUERY)
    assert result.returncode == 0, result.stderr
    assert [row["value"] for row in json.loads(result.stdout)] == ["0.1", "liblinear"]
    bad = trackledger("sql", "--store", str(tmp_path / "data"), "SELECT * FROM no_such_table")
    assert bad.returncode == 1 and "no_such_table" in bad.stderr


@pytest.fixture
def store(tmp_path):
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        log_a_run(ledger)
    return str(tmp_path / "store")


def test_as_of_a_time_without_a_zone_is_utc(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_as_of("2026-11-22T10:40") == (None, 1795344000000)
        assert parse_as_of("2026-11-22T11:40+01:00") == (None, 1795344000000)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_as_of_yesterday_is_one_line(capsys, store):
    status, out, err = command(capsys, "sql", "--store", store, "--as-of", "yesterday", "SELECT 1")
    one_line_error(status, err, "--as-of 'yesterday'", "UTC")
    assert out == ""


@pytest.mark.parametrize("flags", [["--as-of", "20"], ["--store", "s"], ["--state-dir", "d"]])
def test_server_refuses_what_it_would_ignore(capsys, flags):
    with pytest.raises(SystemExit) as exit_status:
        command(capsys, "sql", "--server", "http://127.0.0.1:9", *flags, "SELECT 1")
    assert exit_status.value.code == 2
    assert f"--server runs the query on the server's live projection: {flags[0]}" in capsys.readouterr().err


def test_sql_on_a_missing_store_or_a_damaged_segment_is_one_line(capsys, tmp_path, store):
    status, _, err = command(capsys, "sql", "--store", str(tmp_path / "missing"), "SELECT 1")
    one_line_error(status, err, "no store at")
    damage(next(Path(store).rglob("*.parquet")))
    status, _, err = command(capsys, "sql", "--store", store, "SELECT count(*) FROM events")
    one_line_error(status, err, "cannot read the store", "trackledger verify")


def test_the_table_counts_every_row(capsys, store):
    status, out, _ = command(capsys, "sql", "--store", store, "SELECT range AS i FROM range(12345)")
    assert status == 0
    assert out.rstrip().endswith("12,345 rows (20 shown)")
    assert "12344" in out and "·" in out, "the last rows, after a gap"
    _, one, _ = command(capsys, "sql", "--store", store, "SELECT 'a[b]' AS text")
    assert one.rstrip().endswith("1 row") and "a[b]" in one
