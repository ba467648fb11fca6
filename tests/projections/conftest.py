"""A real ledger on a temp directory, and small helpers to build events."""

from __future__ import annotations

import pytest
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.projections import Projection


def make(cls, **fields):
    return cls(id=E.new_event_id(), actor=fields.pop("actor", "alice"), **fields)


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "store", tmp_path / "state") as led:
        yield led


@pytest.fixture
def projection(ledger):
    proj = Projection(ledger)
    yield proj
    proj.close()


@pytest.fixture
def log(ledger, projection):
    """Append events to the ledger, submit them, and wait until they are applied."""

    def append(*events):
        stamped = ledger.append(list(events))
        projection.submit(stamped)
        projection.flush()
        return stamped

    return append
