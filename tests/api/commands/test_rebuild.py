"""``trackledger rebuild``: the projection derived again from the ledger, where the settings say."""

from __future__ import annotations

import duckdb
import pytest
from trackledger.ledger import Ledger

from tests.api.commands.conftest import log_a_run
from tests.api.conftest import trackledger


@pytest.mark.e2e
def test_rebuild_takes_its_state_dir_from_the_environment(tmp_path):
    with Ledger(str(tmp_path / "store"), str(tmp_path / "server-state")) as ledger:
        log_a_run(ledger)
    env = {"TRACKLEDGER_STORE": str(tmp_path / "store"), "TRACKLEDGER_STATE_DIR": str(tmp_path / "elsewhere")}
    result = trackledger("rebuild", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "rebuilt 5 events (3 metric points)" in result.stdout
    con = duckdb.connect(str(tmp_path / "elsewhere" / "projections.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM metrics").fetchall() == [(3,)]
