"""``trackledger import --from sqlite:///...``: an MLflow server's history, read from its file,
answers the mlflow client as that server does; reruns, kills, collisions and bad files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import duckdb
import pytest
from mlflow import MlflowClient
from trackledger.ledger.bulk import BULK_SEGMENT_ITEMS

from tests.api.conftest import ServerProcess
from tests.importer.compare import differences, reads
from tests.importer.conftest import trackledger
from tests.importer.synthetic import generate


def segment_events(store) -> list[tuple]:
    """(id, type, actor, imported_from) of every event in the store's segments and WAL, via SQL."""
    out = trackledger(
        "sql",
        "--store",
        str(store),
        "--state-dir",
        str(store / ".state"),
        "--format",
        "json",
        "SELECT id, type, actor, writer FROM events ORDER BY seq",
    )
    assert out.returncode == 0, out.stderr
    return [tuple(row.values()) for row in json.loads(out.stdout or "[]")]


def verify(store):
    return trackledger("verify", "--store", str(store))


def rerun_and_count(cmd: list[str], store, partial: list[tuple], sql: str) -> list[dict]:
    """Run a killed import's command (``python -m trackledger import ...``) again: it succeeds,
    appends more than the killed one had and no event twice, and the store verifies. The rows
    ``sql`` gives on the store then."""
    out = trackledger(*cmd[3:])
    assert out.returncode == 0, out.stderr
    ids = [row[0] for row in segment_events(store)]
    assert len(ids) == len(set(ids)) > len(partial)
    assert verify(store).returncode == 0
    counts = trackledger("sql", "--store", str(store), "--format", "json", sql)
    assert counts.returncode == 0, counts.stderr
    return json.loads(counts.stdout)


def import_db(source, store, *extra):
    return trackledger(
        "import",
        "--from",
        source.db_url,
        "--artifacts-from",
        str(source.artifacts),
        "--store",
        str(store),
        *extra,
    )


@pytest.fixture(scope="module")
def imported(mlflow_source, tmp_path_factory):
    store = tmp_path_factory.mktemp("target") / "data"
    out = import_db(mlflow_source, store)
    assert out.returncode == 0, out.stderr
    return store, out


def test_the_imported_store_answers_the_mlflow_client_as_mlflow_does(mlflow_source, imported, tmp_path):
    store, _out = imported
    server = ServerProcess(str(store), tmp_path).start()
    try:
        expected = reads(mlflow_source.url, tmp_path)
        got = reads(server.url, tmp_path)
    finally:
        server.stop()
    assert differences(expected, got) == []
    assert len(expected["runs_all"]) == 6 and expected["deleted_runs"] and expected["artifacts"]
    assert any(len(h) == 3000 for h in expected["histories"].values())


def test_imported_events_say_where_they_came_from_and_keep_the_users(mlflow_source, imported):
    store, out = imported
    assert "runs" in out.stdout and "metric points" in out.stdout
    con = duckdb.connect()
    rows = con.execute(
        "SELECT type, actor, imported_from, source_time, ts "
        f"FROM read_parquet('{store}/segments/*/*.parquet', union_by_name = true)"
    ).fetchall()
    assert rows and all(r[2] == mlflow_source.db_url for r in rows)
    run_actors = {r[1] for r in rows if r[0] == "run_created"}
    users = {u for (u,) in sqlite3.connect(mlflow_source.db).execute("SELECT DISTINCT user_id FROM runs")}
    assert run_actors == users
    created = [r for r in rows if r[0] == "registered_model_created"]
    assert created and all(r[3] < r[4] for r in created)  # the source's time, not the import's


def test_a_second_run_appends_nothing(mlflow_source, imported):
    store, _out = imported
    before = segment_events(store)
    out = import_db(mlflow_source, store)
    assert out.returncode == 0, out.stderr
    assert segment_events(store) == before
    assert "already there" in out.stdout


def point_readers_of(db) -> list[int]:
    """Pids of the processes reading ``db``'s metric points for an import."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().split(b"\0")
        except OSError:
            continue
        if b"trackledger.importer.sqlite_points" in command and str(db).encode() in command:
            found.append(int(pid))
    return found


@pytest.fixture(scope="module")
def big_db(tmp_path_factory):
    """2.4M points: more than two of the import's segments (BULK_SEGMENT_ITEMS each)."""
    db = tmp_path_factory.mktemp("big") / "big.db"
    generate(db, runs=60, points_per_run=40_000)
    return db


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_killed_midway_and_run_again_nothing_is_twice(tmp_path, big_db, sig):
    assert 2 * BULK_SEGMENT_ITEMS < 60 * 40_000
    store = tmp_path / "data"
    cmd = [
        sys.executable,
        "-m",
        "trackledger",
        "import",
        "--from",
        f"sqlite:///{big_db}",
        "--store",
        str(store),
        "--artifacts-from",
        str(tmp_path / "no-artifacts"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(store.glob("segments/*/*.parquet")):  # killed once the first segment is out
        assert proc.poll() is None and time.monotonic() < deadline, (
            "the import ended before it could be killed"
        )
        time.sleep(0.01)
    os.kill(proc.pid, sig)
    _out, err = proc.communicate(timeout=300)
    if sig == signal.SIGINT:
        assert proc.returncode == 1
        assert err.strip().splitlines()[-1] == (
            "trackledger import: error: interrupted: run the same command again to continue"
        )
    else:
        assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while point_readers_of(big_db):  # the reading process ends with its importer
        assert time.monotonic() < deadline, "the import's point reader outlived it"
        time.sleep(0.05)
    partial = segment_events(store)
    assert len(partial) > 0

    counts = rerun_and_count(
        cmd,
        store,
        partial,
        "SELECT (SELECT count(*) FROM metrics) AS points, (SELECT count(*) FROM runs) AS runs, "
        "(SELECT count(*) FROM params) AS params",
    )
    assert counts == [{"points": 60 * 40_000, "runs": 60, "params": 600}]


def test_an_experiment_id_or_name_taken_in_the_target_is_refused(mlflow_source, tmp_path):
    store = tmp_path / "data"
    server = ServerProcess(str(store), tmp_path).start()
    client = MlflowClient(server.url)
    client.create_experiment("other")  # takes id 1, alpha's id in the source
    server.stop()
    before = segment_events(store)

    out = import_db(mlflow_source, store)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "trackledger import: error: experiment id 1 ('alpha') is taken in the target by 'other': rerun with "
        "--remap-experiment-ids to give it a new id"
    ]
    assert segment_events(store) == before

    out = import_db(mlflow_source, store, "--remap-experiment-ids")
    assert out.returncode == 0, out.stderr
    assert "experiment 1 -> 4" in out.stdout
    server = ServerProcess(str(store), tmp_path).start()
    try:
        alpha = MlflowClient(server.url).get_experiment_by_name("alpha")
        assert alpha.experiment_id == "4"
        runs = MlflowClient(server.url).search_runs(["4"])
        assert runs and all(r.info.artifact_uri.startswith("mlflow-artifacts:/4/") for r in runs)
        assert MlflowClient(server.url).list_artifacts(runs[-1].info.run_id) is not None
    finally:
        server.stop()
    # Rerun with the same flag: the remapped experiment is found where it went, nothing is added.
    before_again = segment_events(store)
    again = import_db(mlflow_source, store, "--remap-experiment-ids")
    assert again.returncode == 0, again.stderr
    assert segment_events(store) == before_again

    store2 = tmp_path / "named"
    server = ServerProcess(str(store2), tmp_path).start()
    MlflowClient(server.url).create_experiment("gamma-empty")
    server.stop()
    out = import_db(mlflow_source, store2, "--remap-experiment-ids")
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1 and "'gamma-empty'" in out.stderr


@pytest.mark.parametrize("kind", ["garbage", "foreign", "missing"])
def test_a_corrupt_or_foreign_file_is_a_clear_error_and_writes_nothing(tmp_path, kind):
    db = tmp_path / "source.db"
    if kind == "garbage":
        db.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    elif kind == "foreign":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE runs (id INTEGER)")
        con.commit()
        con.close()
    store = tmp_path / "data"
    out = trackledger("import", "--from", f"sqlite:///{db}", "--store", str(store))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trackledger import: error: ")
    assert not store.exists()


def test_a_damaged_page_of_metric_points_is_a_one_line_error_naming_the_run(tmp_path):
    """The metric points are not checked up front (that would read the whole file): a damaged
    page is found when its run is read."""
    db = tmp_path / "source.db"
    generate(db, runs=3, points_per_run=2_000)
    con = sqlite3.connect(db)
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    pages = [
        p for (p,) in con.execute("SELECT pageno FROM dbstat WHERE name = 'metrics' AND pagetype = 'leaf'")
    ]
    con.close()
    with open(db, "r+b") as file:
        file.seek((pages[len(pages) // 2] - 1) * page_size)
        file.write(b"\xff" * page_size)
    out = trackledger(
        "import",
        "--from",
        f"sqlite:///{db}",
        "--store",
        str(tmp_path / "data"),
        "--artifacts-from",
        str(tmp_path),
    )
    assert out.returncode == 1
    error = out.stderr.strip().splitlines()[-1]  # after the progress bars
    assert error.startswith(f"trackledger import: error: {db}: the metric points of run "), out.stderr
    assert error.endswith("cannot be read (IO: Failed to step query: database disk image is malformed)")


def test_a_store_owned_by_a_running_server_needs_server(mlflow_source, tmp_path):
    store = tmp_path / "data"
    server = ServerProcess(str(store), tmp_path).start()
    try:
        out = import_db(mlflow_source, store)
    finally:
        server.stop()
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"trackledger import: error: the store {store} is in use by a running server (state {store}/.state): "
        "import through it with --server URL, or stop it first"
    ]


def test_dry_run_counts_and_writes_nothing(mlflow_source, tmp_path):
    store = tmp_path / "data"
    out = import_db(mlflow_source, store, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "dry run" in out.stdout and "3,016" in out.stdout
    assert segment_events(store) == []


def test_one_experiment_only(mlflow_source, tmp_path):
    store = tmp_path / "data"
    out = import_db(mlflow_source, store, "--experiment", "beta")
    assert out.returncode == 0, out.stderr
    server = ServerProcess(str(store), tmp_path).start()
    try:
        client = MlflowClient(server.url)
        from mlflow.entities import ViewType

        names = {e.name: e.lifecycle_stage for e in client.search_experiments(view_type=ViewType.ALL)}
        assert names == {"Default": "active", "beta": "deleted"}
    finally:
        server.stop()
    missing = import_db(mlflow_source, store, "--experiment", "nope")
    assert missing.returncode == 1 and "'nope'" in missing.stderr
