"""Group commit: concurrent appends share syncs, and none returns before its event is synced."""

from __future__ import annotations

import os
import threading
import time

from trackledger.ledger import Ledger
from trackledger.ledger.events import BatchLogged, Metric, new_event_id


def test_concurrent_appends_share_syncs_and_return_only_when_synced(tmp_path, monkeypatch):
    real_fdatasync = os.fdatasync
    synced_up_to: list[int] = []
    ledger = Ledger(str(tmp_path / "store"), str(tmp_path / "state"))

    def slow_fdatasync(fd: int) -> None:
        target = ledger._written_seq  # everything written so far is covered by this sync
        time.sleep(0.02)  # a slow disk, so that appenders pile up behind the leader
        real_fdatasync(fd)
        synced_up_to.append(target)

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    early: list[int] = []
    appended: list[int] = []

    def caller() -> None:
        for _ in range(20):
            seq = ledger.append([BatchLogged(id=new_event_id(), metrics=[Metric("k", 1.0, 1)])])[0].seq
            if not synced_up_to or max(synced_up_to) < seq:
                early.append(seq)
            appended.append(seq)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.setattr(os, "fdatasync", real_fdatasync)
    ledger.close()
    assert sorted(appended) == list(range(1, 161))
    assert not early, f"appends returned before their sync: {early[:5]}"
    assert len(synced_up_to) < 160 / 2, f"{len(synced_up_to)} syncs for 160 appends: no grouping"


def test_os_durability_never_syncs_on_append(tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append(fd))
    with Ledger(str(tmp_path / "store"), str(tmp_path / "state"), durability="os") as ledger:
        for _ in range(10):
            ledger.append([BatchLogged(id=new_event_id())])
        assert ledger.durable_seq == 10
    assert calls == []
