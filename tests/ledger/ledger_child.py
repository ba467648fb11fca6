"""A separate process that uses a ledger and then dies without closing it (a crash).

Usage: python3 ledger_child.py MODE STORE STATE_DIR [N]
  loop      append batches forever; after each append returns, print its event ids (acknowledged)
  append N  append N single-metric events, then die without closing
  roll-then-restore  append N events, copy the WAL aside, roll, put the WAL copy back, then die:
            the state left by a crash between publishing a segment and deleting its WAL file
  bulk-loop  add units of two events through a bulk writer forever, publishing every third add;
            after each publish, print the ids published (acknowledged)
"""

from __future__ import annotations

import os
import random
import shutil
import sys

from trackledger.ledger import Ledger
from trackledger.ledger.events import BatchLogged, Metric, Param, RunCreated, new_event_id


def batch(i: int) -> list:
    metrics = [
        Metric(key=f"m{k}", value=random.random(), timestamp=i, step=i) for k in range(random.randint(1, 50))
    ]
    events = [BatchLogged(id=new_event_id(), run_id="r1", metrics=metrics, params=[Param(f"p{i}", "v")])]
    if random.random() < 0.3:
        events.append(
            RunCreated(
                id=new_event_id(), run_id=f"r{i}", name="n", user_id="u", start_time=i, artifact_uri="a"
            )
        )
    return events


def bulk_loop(ledger: Ledger) -> None:
    bulk = ledger.bulk()
    added: list[str] = []
    i = 0
    while True:
        run = RunCreated(
            id=new_event_id(), run_id=f"r{i}", name="n", user_id="u", start_time=i, artifact_uri="a"
        )
        unit = [batch(i)[0], run]
        bulk.add(unit)
        added.extend(e.id for e in unit)
        i += 1
        if i % 3 == 0:
            bulk.publish()
            sys.stdout.write(" ".join(added) + "\n")
            sys.stdout.flush()
            added = []


def main() -> None:
    mode, store, state_dir = sys.argv[1:4]
    ledger = Ledger(store, state_dir, roll_bytes=32 * 1024, roll_seconds=3600)
    if mode == "bulk-loop":
        bulk_loop(ledger)
    if mode == "loop":
        i = 0
        while True:
            stamped = ledger.append(batch(i))
            sys.stdout.write(" ".join(e.id for e in stamped) + "\n")
            sys.stdout.flush()
            i += 1
    count = int(sys.argv[4])
    for i in range(count):
        ledger.append(batch(i))
    if mode == "roll-then-restore":
        saved = state_dir + "-wal-copy"
        shutil.copytree(ledger.wal_dir, saved)
        ledger.roll()
        shutil.rmtree(ledger.wal_dir)
        shutil.copytree(saved, ledger.wal_dir)
    os._exit(0)  # no close(): what a crash leaves


if __name__ == "__main__":
    main()
