"""Following a ledger: every durable event once, in order, in batches, whether it is read from the
WAL (incrementally) or from segments after a roll, and from any starting seq."""

from __future__ import annotations

from trackledger.ledger import Ledger
from trackledger.ledger.events import RunDeleted, new_event_id
from trackledger.ledger.follow import Follower


def _append(ledger: Ledger, count: int, size: int = 1) -> None:
    for _ in range(count):
        ledger.append([RunDeleted(id=new_event_id(), run_id="r") for _ in range(size)])


def _drain(follower: Follower, batch: int) -> list[int]:
    seqs = []
    while events := follower.poll(batch):
        seqs += [e.seq for e in events]
    return seqs


def test_a_follower_sees_every_event_once_in_order_across_rolls(tmp_path):
    with Ledger(tmp_path / "store", tmp_path / "state", roll_bytes=2000) as ledger:
        follower = Follower(ledger)
        seen: list[int] = []
        for round_ in range(30):
            _append(ledger, 7, size=1 + round_ % 3)
            seen += [e.seq for e in follower.poll(5)]
            if round_ % 4 == 0:
                ledger.roll()
        seen += _drain(follower, 5)
        assert seen == list(range(1, ledger.last_seq + 1))
        assert len(ledger.segments()) > 3
        assert follower.poll() == []


def test_a_follower_starts_after_any_seq_and_after_a_reopen(tmp_path):
    with Ledger(tmp_path / "store", tmp_path / "state", roll_bytes=1500) as ledger:
        _append(ledger, 40)
        last = ledger.last_seq
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        _append(ledger, 5)
        for after in (0, 1, 17, last, last + 3):
            assert _drain(Follower(ledger, after), 7) == list(range(after + 1, last + 6))


def test_a_follower_reads_only_durable_events(tmp_path):
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        _append(ledger, 3)
        follower = Follower(ledger)
        assert [e.seq for e in follower.poll()] == [1, 2, 3]
        staged = ledger.stage([RunDeleted(id=new_event_id(), run_id="r")])
        assert follower.poll() == [] and staged[0].seq > ledger.durable_seq
        ledger.wait_durable(staged[0].seq)
        assert [e.seq for e in follower.poll()] == [4]
