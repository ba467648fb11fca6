"""Crash safety: kill -9 while appending, torn WAL tails, a crash in the middle of a roll."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading

import pytest
from trackledger.ledger import Ledger, verify
from trackledger.ledger.events import BatchLogged, Metric, new_event_id
from trackledger.ledger.wal import FRAME, wal_files

pytestmark = pytest.mark.e2e

CHILD = os.path.join(os.path.dirname(__file__), "ledger_child.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_child(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, CHILD, *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )


def assert_intact(store: str, state_dir: str, acknowledged: list[str]) -> None:
    """Every acknowledged id present once, in acknowledgement order; seqs 1..n; verify passes."""
    with Ledger(store, state_dir) as ledger:
        events = list(ledger.read())
    ids = [e.id for e in events]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len(set(ids)) == len(ids), "an event is duplicated"
    position = {event_id: i for i, event_id in enumerate(ids)}
    missing = [a for a in acknowledged if a not in position]
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert [position[a] for a in acknowledged] == sorted(position[a] for a in acknowledged)
    report = verify(store)
    assert report.ok, report.summary()


def killed_child(mode: str, store: str, state_dir: str, lines: int) -> list[str]:
    """Run the ledger child in ``mode`` and kill -9 it after ``lines`` lines of acknowledged ids:
    every id it acknowledged, also those between our last read and the kill."""
    child = subprocess.Popen(
        [sys.executable, CHILD, mode, store, state_dir], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    acknowledged = []
    for _ in range(lines):
        line = child.stdout.readline()
        if not line:
            break
        acknowledged.extend(line.split())
    os.kill(child.pid, signal.SIGKILL)
    acknowledged.extend(child.stdout.read().split())
    child.wait()
    assert child.returncode == -signal.SIGKILL
    return acknowledged


def test_kill_9_while_appending_loses_no_acknowledged_event(tmp_path):
    store, state_dir = str(tmp_path / "store"), str(tmp_path / "state")
    rng = random.Random()
    acknowledged: list[str] = []
    for _round in range(6):
        # A random moment: after this many acknowledged appends.
        acknowledged.extend(killed_child("loop", store, state_dir, rng.randint(1, 400)))
        assert_intact(store, state_dir, acknowledged)
    assert len(acknowledged) > 0
    segments = [p for p in (tmp_path / "store").rglob("*.parquet")]
    assert len(segments) > 1, "the test should cross WAL-to-segment rolls"


def test_kill_9_while_bulk_writing_loses_nothing_published_and_no_add_in_part(tmp_path):
    store, state_dir = str(tmp_path / "store"), str(tmp_path / "state")
    acknowledged: list[str] = []
    for _round in range(4):
        acknowledged.extend(killed_child("bulk-loop", store, state_dir, random.randint(1, 40)))
        assert_intact(store, state_dir, acknowledged)
        with Ledger(store, state_dir) as ledger:
            events = list(ledger.read())
        # Units of two (a batch, then a run): never one without the other.
        assert len(events) % 2 == 0
        assert all(type(a).__name__ == "BatchLogged" for a in events[::2])
        assert all(type(b).__name__ == "RunCreated" for b in events[1::2])
    assert acknowledged


@pytest.mark.parametrize(
    "tail",
    [b"\x10", FRAME.pack(100, 0) + b"short", FRAME.pack(4, 12345) + b"abcd"],
    ids=["partial-header", "short-frame", "bad-checksum"],
)
def test_torn_tail_is_dropped_and_appending_continues(tmp_path, tail):
    store, state_dir = str(tmp_path / "store"), str(tmp_path / "state")
    run_child("append", store, state_dir, "5")
    wal = wal_files(os.path.join(state_dir, "wal"))[-1]
    intact_size = os.path.getsize(wal)
    with open(wal, "ab") as f:
        f.write(tail)
    with Ledger(store, state_dir) as ledger:
        assert os.path.getsize(wal) == intact_size, "the torn tail was not cut off"
        before = [e.id for e in ledger.read()]
        assert len(before) >= 5
        stamped = ledger.append([BatchLogged(id=new_event_id(), metrics=[Metric("k", 1.0, 1)])])
        assert stamped[0].seq == len(before) + 1
    with Ledger(store, state_dir) as ledger:
        assert [e.id for e in ledger.read()] == [*before, stamped[0].id]
    assert verify(store).ok


def test_crash_between_segment_publish_and_wal_delete_duplicates_nothing(tmp_path):
    store, state_dir = str(tmp_path / "store"), str(tmp_path / "state")
    run_child("roll-then-restore", store, state_dir, "20")
    with Ledger(store, state_dir) as ledger:
        events = list(ledger.read())
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert len({e.id for e in events}) == len(events)
        assert ledger.tail_table().num_rows == 0, "WAL events already in a segment came back"
        stamped = ledger.append([BatchLogged(id=new_event_id(), metrics=[Metric("k", 1.0, 1)])])
        assert stamped[0].seq == len(events) + 1
    assert verify(store).ok


def test_roll_returns_the_segment_the_background_roller_made_first(tmp_path, monkeypatch):
    """``roll`` rotates the WAL, which wakes the background roller: when the roller rolls the
    file before ``roll`` gets to it, ``roll`` still returns that segment (it returned None)."""
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state")) as ledger:
        stamped = ledger.append([BatchLogged(id=new_event_id(), run_id="r", metrics=[Metric("m", 1.0, 1)])])
        rolling = ledger._roll_sealed

        def roller_first():
            roller = threading.Thread(target=rolling)
            roller.start()
            roller.join()
            rolling()

        monkeypatch.setattr(ledger, "_roll_sealed", roller_first)
        info = ledger.roll()
        assert info is not None and info.last_seq == stamped[-1].seq
        assert ledger.roll() is None  # nothing new since
