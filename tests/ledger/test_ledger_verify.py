"""Tamper evidence, the verify and events commands, and plain DuckDB reading the store."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from trackledger.ledger import Ledger, verify
from trackledger.ledger import ledger as ledger_module
from trackledger.ledger.events import BatchLogged, ExperimentCreated, Metric, RunCreated, new_event_id

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trackledger", *args], cwd=REPO, capture_output=True, text=True
    )


@pytest.fixture(params=["one row group per segment", "one row group per event"])
def chunk_items(request, monkeypatch):
    """How many items the roller puts in one row group: the default, or 1 (several per segment)."""
    if request.param == "one row group per event":
        monkeypatch.setattr(ledger_module, "ROLL_CHUNK_ITEMS", 1)
    return ledger_module.ROLL_CHUNK_ITEMS


@pytest.fixture
def store(tmp_path, chunk_items):
    """A local store with four segments of one writer: seqs 1-3, 4-6, 7-9, 10-12."""
    store = tmp_path / "store"
    with Ledger(str(store), str(tmp_path / "state")) as ledger:
        ledger.append(
            [
                ExperimentCreated(
                    id=new_event_id(),
                    experiment_id="7",
                    name="e",
                    artifact_location="a",
                    creation_time=1,
                    actor="alice",
                    actor_verified=True,
                )
            ]
        )
        ledger.append(
            [
                RunCreated(
                    id=new_event_id(),
                    experiment_id="7",
                    run_id="r1",
                    name="n",
                    user_id="alice",
                    start_time=1,
                    artifact_uri="a",
                )
            ]
        )
        for i in range(10):
            ledger.append(
                [
                    BatchLogged(
                        id=new_event_id(),
                        run_id="r1" if i % 2 else "r2",
                        metrics=[Metric("loss", 1 / (i + 1), i, i)],
                    )
                ]
            )
            if i % 3 == 0:
                ledger.roll()
    return store


def segment_files(store) -> list:
    return sorted(store.rglob("*.parquet"))


@pytest.mark.e2e
def test_intact_store_verifies(store, chunk_items):
    row_groups = [pq.ParquetFile(f).num_row_groups for f in segment_files(store)]
    assert row_groups == ([3, 3, 3, 3] if chunk_items == 1 else [1, 1, 1, 1])
    report = verify(str(store))
    assert report.ok, report.summary()
    assert [(w.segments, w.events, w.first_seq, w.last_seq) for w in report.writers] == [(4, 12, 1, 12)]
    result = cli("verify", "--store", str(store))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout and "4 segments, 12 events" in result.stdout


@pytest.mark.e2e
def test_changed_byte_is_detected(store):
    target = segment_files(store)[1]
    data = bytearray(target.read_bytes())
    data[len(data) // 3] ^= 0x01
    target.write_bytes(bytes(data))
    result = cli("verify", "--store", str(store))
    assert result.returncode != 0 and target.name in result.stdout


def test_any_changed_byte_of_a_segment_names_it(store):
    """Event data, page headers, statistics, footer: every byte of a non-newest segment counts."""
    target = segment_files(store)[1]
    original = target.read_bytes()
    positions = random.Random(7).sample(range(len(original)), 120)
    for position in positions:
        data = bytearray(original)
        data[position] ^= 0x40
        target.write_bytes(bytes(data))
        report = verify(str(store))
        assert report.first_bad is not None, f"byte {position} of {len(original)} changed unnoticed"
        assert report.first_bad.path.endswith(target.name), (position, report.summary())
    target.write_bytes(original)
    assert verify(str(store)).ok


def test_every_changed_byte_of_the_footer_metadata_names_it(store):
    """The seq range, writer and digests in the footer: a flip may leave them unparsable, never unnoticed."""
    target = segment_files(store)[1]
    original = target.read_bytes()
    # The key-value pairs from first_seq to the digests; pyarrow writes its ARROW:schema pair after them.
    start = original.index(b"first_seq")
    for position in range(start, original.index(b"ARROW:schema", start)):
        data = bytearray(original)
        data[position] ^= 0x40
        target.write_bytes(bytes(data))
        report = verify(str(store))
        assert report.first_bad is not None and report.first_bad.path.endswith(target.name), position
    target.write_bytes(original)
    assert verify(str(store)).ok


def test_rewritten_footer_with_any_text_is_named(store):
    """A forger who rewrites a segment may put non-hex text in its footer; verify still names it."""
    target = segment_files(store)[1]
    table = pq.read_table(target)
    metadata = {**pq.read_metadata(target).metadata, b"prev_file_sha256": "é".encode() * 64}
    pq.write_table(table.replace_schema_metadata(metadata), target)
    report = verify(str(store))
    assert report.first_bad is not None and report.first_bad.path.endswith(target.name)


def test_removed_middle_segment_is_detected(store):
    files = segment_files(store)
    files[1].unlink()
    report = verify(str(store))
    assert report.first_bad.path.endswith(files[2].name)
    assert "seq gap" in report.first_bad.reason


@pytest.mark.e2e
def test_swapped_segments_are_detected(store):
    files = segment_files(store)
    temp = files[1].with_suffix(".tmp")
    files[1].rename(temp)
    files[2].rename(files[1])
    temp.rename(files[2])
    report = verify(str(store))
    assert report.first_bad.path.endswith(files[1].name)
    result = cli("verify", "--store", str(store))
    assert result.returncode != 0 and files[1].name in result.stdout


def test_inserted_segment_is_detected(store, tmp_path):
    # A well-formed segment from another ledger, renamed into this writer's sequence.
    with Ledger(str(tmp_path / "other"), str(tmp_path / "other-state"), writer="intruder") as other:
        other.append([BatchLogged(id=new_event_id(), metrics=[Metric("x", 0.0, 0)])])
        other.roll()
    forged = segment_files(tmp_path / "other")[0]
    files = segment_files(store)
    shutil.copy(forged, files[1].parent / f"{6:020d}-{6:020d}.parquet")
    report = verify(str(store))
    assert not report.ok
    assert report.first_bad.path.endswith(f"{6:020d}-{6:020d}.parquet")


@pytest.mark.e2e
def test_events_command_lists_history(store):
    result = cli("events", "--store", str(store))
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 12
    assert lines[0].split()[0] == "1" and "experiment_created" in lines[0] and "alice" in lines[0]
    assert lines[-1].endswith("run=r1 metrics loss=0.1 (step 9)"), "the events table's summary"
    runs = cli("events", "--store", str(store), "--run", "r1", "--json").stdout.splitlines()
    assert [json.loads(line)["run_id"] for line in runs] == ["r1"] * 6
    experiment = cli("events", "--store", str(store), "--experiment", "7").stdout.splitlines()
    assert len(experiment) == 2 + 5, "the experiment, its run r1's creation and r1's five batches"


@pytest.mark.e2e
def test_plain_duckdb_reads_the_ledger(store):
    """No trackledger import: the documented glob is all a reader needs."""
    script = f"""
import sys, duckdb
query = ("SELECT count(*), count(DISTINCT run_id), sum(len(metrics)), max(seq) "
         "FROM read_parquet('{store}/segments/**/*.parquet')")
print(duckdb.connect().sql(query).fetchall()[0])
print(sorted(sys.modules).count('ledger'))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["(12, 2, 10, 12)", "0"]
