"""Reruns of ``trackledger import`` while the source lives on: a run changed in the source since the
last import (more points, params and tags set or deleted, ended, deleted or restored, a dataset
input, an artifact) is brought up to date exactly once, from the ``.db`` file into a store and over
REST through a running server; a rerun killed midway of its changes, run again, adds nothing twice."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.api.conftest import ServerProcess
from tests.importer.compare import differences, reads
from tests.importer.conftest import HERE, mlflow_server, trackledger
from tests.importer.synthetic import generate
from tests.importer.test_import_sqlite import import_db, rerun_and_count, segment_events

NOTHING_APPENDED = re.compile(r"│ events appended\s+│\s+0 │")


def change(source, phase: str, ids_file) -> None:
    script = HERE / "mlflow_changes.py"
    subprocess.run([sys.executable, str(script), source.url, phase, str(ids_file)], check=True, timeout=300)


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    """A live MLflow history imported (into a store from its file, into a server over REST), then
    changed in MLflow."""
    workdir = tmp_path_factory.mktemp("live")
    with mlflow_server(workdir) as source:
        change(source, "before", workdir / "ids.json")
        db_store = workdir / "from-db"
        out = import_db(source, db_store)
        assert out.returncode == 0, out.stderr
        server = ServerProcess(str(workdir / "through-server"), workdir).start()
        try:
            out = trackledger("import", "--from", source.url, "--server", server.url)
            assert out.returncode == 0, out.stderr
        finally:
            server.stop()
        change(source, "after", workdir / "ids.json")
        yield source, db_store, server


def test_a_rerun_from_the_db_file_brings_every_change_once(changed, tmp_path):
    source, store, _server = changed
    before = segment_events(store)
    dry = import_db(source, store, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "runs updated" in dry.stdout and segment_events(store) == before

    out = import_db(source, store)
    assert out.returncode == 0, out.stderr
    assert "runs updated" in out.stdout
    server = ServerProcess(str(store), tmp_path).start()
    try:
        expected, got = (
            reads(source.url, tmp_path, registry=False),
            reads(server.url, tmp_path, registry=False),
        )
    finally:
        server.stop()
    assert differences(expected, got) == []
    growing = next(r for r in expected["runs_all"] if r["run_name"] == "growing")
    assert growing["status"] == "FINISHED" and "later/second.txt" in expected["artifacts"][growing["run_id"]]
    assert len(expected["histories"][(growing["run_id"], "loss")]) == 200

    settled = segment_events(store)
    again = import_db(source, store)
    assert again.returncode == 0, again.stderr
    assert NOTHING_APPENDED.search(again.stdout) and segment_events(store) == settled
    ids = [row[0] for row in settled]
    assert len(ids) == len(set(ids))


def test_a_rerun_over_rest_through_a_server_brings_every_change_once(changed, tmp_path):
    source, _store, server = changed
    server.start()
    try:
        out = trackledger("import", "--from", source.url, "--server", server.url)
        assert out.returncode == 0, out.stderr
        assert "runs updated" in out.stdout
        expected, got = (
            reads(source.url, tmp_path, registry=False),
            reads(server.url, tmp_path, registry=False),
        )
        again = trackledger("import", "--from", source.url, "--server", server.url)
    finally:
        server.stop()
    # The Default experiment is the server's own (its creation time is the server's).
    for side in (expected, got):
        side["experiments"] = [e[:4] + e[6:] if e[0] == "0" else e for e in side["experiments"]]
    assert differences(expected, got) == []
    assert again.returncode == 0, again.stderr
    assert NOTHING_APPENDED.search(again.stdout)


def test_a_rerun_killed_midway_of_its_changes_and_run_again_adds_nothing_twice(tmp_path):
    """60 runs imported while running with half their points; then ended with all of them: the
    rerun appends more than a segment of points (BULK_SEGMENT_ITEMS), killed once one is out."""
    full = tmp_path / "full.db"
    generate(full, runs=60, points_per_run=40_000)
    half = tmp_path / "half.db"
    half.write_bytes(full.read_bytes())
    con = sqlite3.connect(half)
    con.execute("DELETE FROM metrics WHERE step >= 4000")
    con.execute("UPDATE runs SET status = 'RUNNING', end_time = NULL")
    con.commit()
    con.close()
    store = tmp_path / "data"
    args = ["--store", str(store), "--artifacts-from", str(tmp_path / "no-artifacts")]
    first = trackledger("import", "--from", f"sqlite:///{half}", *args)
    assert first.returncode == 0, first.stderr
    segments = len(list(store.glob("segments/*/*.parquet")))

    cmd = [sys.executable, "-m", "trackledger", "import", "--from", f"sqlite:///{full}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(store.glob("segments/*/*.parquet"))) == segments:
        assert proc.poll() is None and time.monotonic() < deadline, (
            "the rerun ended before it could be killed"
        )
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=300)
    partial = segment_events(store)

    counts = rerun_and_count(
        cmd,
        store,
        partial,
        "SELECT (SELECT count(*) FROM metrics) AS points, "
        "(SELECT count(*) FROM runs WHERE status = 'FINISHED' AND end_time IS NOT NULL) AS finished",
    )
    assert counts == [{"points": 60 * 40_000, "finished": 60}]
    again = trackledger(*cmd[3:])
    assert NOTHING_APPENDED.search(again.stdout)
