"""``trackledger events``: the history from the segments and, given a state dir, the server's WAL."""

from __future__ import annotations

import pytest
from trackledger.ledger import Ledger
from trackledger.ledger.events import ArtifactWritten, new_event_id
from trackledger.projections import connect

from tests.api.commands.conftest import command, damage, log_a_run, one_line_error
from tests.api.conftest import trackledger


@pytest.fixture
def store(tmp_path):
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        log_a_run(ledger)
    return tmp_path / "store"


@pytest.mark.e2e
def test_events_reads_the_wal_of_the_state_dir_in_the_environment(tmp_path):
    store, state = tmp_path / "store", tmp_path / "state"
    with Ledger(str(store), str(state)) as ledger:
        log_a_run(ledger)  # appended to the WAL, not yet rolled into a segment
        without_wal = trackledger("events", "--store", str(store), cwd=tmp_path)
        with_wal = trackledger(
            "events", "--store", str(store), cwd=tmp_path, env={"TRACKLEDGER_STATE_DIR": str(state)}
        )
    assert without_wal.returncode == 1 and "no store at" in without_wal.stderr, "nothing rolled yet"
    assert with_wal.returncode == 0, with_wal.stderr
    assert len(with_wal.stdout.splitlines()) == 5


def test_events_of_a_missing_store_is_an_error(capsys, tmp_path):
    status, out, err = command(capsys, "events", "--store", str(tmp_path / "missing"))
    one_line_error(status, err, "no store at")
    assert out == ""


def test_events_on_a_damaged_segment_is_one_line(capsys, store):
    damage(next(store.rglob("*.parquet")))
    status, out, err = command(capsys, "events", "--store", str(store))
    one_line_error(status, err, "damaged segment", ".parquet", "trackledger verify")
    assert out == ""


def test_summaries_are_the_events_table_s_and_keep_artifact_names_whole(capsys, tmp_path, store):
    long_path = "7/r1/artifacts/" + "/".join(["a-rather-long-folder-name"] * 6) + "/model.pkl"
    with Ledger(str(store), str(tmp_path / "state")) as ledger:
        written = ArtifactWritten(id=new_event_id(), run_id="r1", path=long_path, size=12, sha256="0" * 64)
        ledger.append([written])
    status, out, _ = command(capsys, "events", "--store", str(store))
    assert status == 0
    lines = out.splitlines()
    summaries = connect(str(store)).sql("SELECT summary FROM events ORDER BY seq").fetchall()
    assert len(lines) == len(summaries) == 6
    for line, (summary,) in zip(lines, summaries, strict=True):
        assert line.endswith(" " + summary), (line, summary)
    assert lines[-1].endswith(f"{long_path} (12 bytes)")
