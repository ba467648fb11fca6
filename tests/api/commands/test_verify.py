"""``trackledger verify``: a store that is not there is an error; counts read as English."""

from __future__ import annotations

import pytest
from trackledger.ledger import Ledger

from tests.api.commands.conftest import command, log_a_run, one_line_error


def test_verify_a_missing_store_is_an_error(capsys, tmp_path):
    status, out, err = command(capsys, "verify", "--store", str(tmp_path / "missing"))
    one_line_error(status, err, "no store at", "missing", "--store")
    assert out == ""


def test_one_segment_is_one_segment(capsys, tmp_path):
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        log_a_run(ledger)
    status, out, _ = command(capsys, "verify", "--store", str(tmp_path / "store"))
    assert status == 0
    assert ": 1 segment, 5 events," in out


@pytest.mark.s3
def test_verify_an_s3_store_and_a_missing_prefix(capsys, tmp_path, monkeypatch, s3_server, s3_bucket):
    bucket, options = s3_bucket
    with Ledger(f"s3://{bucket}/store", str(tmp_path / "state"), storage_options=options) as ledger:
        log_a_run(ledger)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    status, out, _ = command(capsys, "verify", "--store", f"s3://{bucket}/store")
    assert status == 0 and ": OK" in out and "1 segment, 5 events" in out
    status, _, err = command(capsys, "verify", "--store", f"s3://{bucket}/elsewhere")
    one_line_error(status, err, f"no store at s3://{bucket}/elsewhere")
