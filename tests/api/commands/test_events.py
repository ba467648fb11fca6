"""``trackledger events``: the history from the segments and, given a state dir, the server's WAL."""

from __future__ import annotations

from trackledger.ledger import Ledger

from tests.api.commands.conftest import log_a_run, trackledger


def test_events_reads_the_wal_of_the_state_dir_in_the_environment(tmp_path):
    store, state = tmp_path / "store", tmp_path / "state"
    with Ledger(str(store), str(state)) as ledger:
        log_a_run(ledger)  # appended to the WAL, not yet rolled into a segment
        without_wal = trackledger("events", "--store", str(store), cwd=tmp_path)
        with_wal = trackledger(
            "events", "--store", str(store), cwd=tmp_path, env={"TRACKLEDGER_STATE_DIR": str(state)}
        )
    assert without_wal.returncode == 0 and without_wal.stdout == ""
    assert with_wal.returncode == 0, with_wal.stderr
    assert len(with_wal.stdout.splitlines()) == 5
