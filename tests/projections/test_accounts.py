"""Accounts, tokens and permissions derived from their events: live, rebuilt, and one batch at a time."""

from __future__ import annotations

from trackledger.ledger import events as E
from trackledger.projections import Projection

from tests.projections.conftest import make

ACCOUNT_TABLES = ("users", "tokens", "permissions", "credentials")


def _history():
    """alice (admin) creates bob, grants and revokes, bob gets a token; carol is created, deleted
    and created again (her grant from before the deletion is gone)."""
    return [
        make(E.UserCreated, actor="alice", username="alice", password_hash="h-a", is_admin=True),
        make(E.UserCreated, actor="alice", username="bob", password_hash="h-b1"),
        make(E.UserPasswordChanged, actor="bob", username="bob", password_hash="h-b2"),
        make(
            E.ExperimentCreated,
            actor="alice",
            actor_verified=True,
            experiment_id="1",
            name="exp",
            artifact_location="a",
            creation_time=1,
        ),
        make(
            E.PermissionGranted,
            actor="alice",
            username="bob",
            resource_type="experiment",
            resource_id="1",
            permission="READ",
        ),
        make(
            E.PermissionGranted,
            actor="alice",
            username="bob",
            resource_type="experiment",
            resource_id="1",
            permission="EDIT",
        ),
        make(E.TokenCreated, actor="bob", username="bob", token_id="t1", token_hash="th1", expires_at=99),
        make(E.TokenCreated, actor="bob", username="bob", token_id="t2", token_hash="th2"),
        make(E.TokenRevoked, actor="bob", username="bob", token_id="t1"),
        make(E.UserCreated, actor="alice", username="carol", password_hash="h-c1"),
        make(
            E.PermissionGranted,
            actor="alice",
            username="carol",
            resource_type="experiment",
            resource_id="1",
            permission="MANAGE",
        ),
        make(E.UserDeleted, actor="alice", username="carol"),
        make(E.UserCreated, actor="alice", username="carol", password_hash="h-c2"),
        make(E.UserAdminChanged, actor="alice", username="bob", is_admin=True),
        make(E.UserAdminChanged, actor="alice", username="bob", is_admin=False),
        make(
            E.PermissionGranted,
            actor="alice",
            username="carol",
            resource_type="registered_model",
            resource_id="m1",
            permission="READ",
        ),
        make(
            E.PermissionRevoked,
            actor="alice",
            username="carol",
            resource_type="registered_model",
            resource_id="m1",
        ),
    ]


def _tables(projection):
    return {name: sorted(projection.read(f"SELECT * FROM {name}")) for name in ACCOUNT_TABLES}


def test_accounts_derived_the_same_live_one_by_one_and_rebuilt(ledger, projection, log):
    for event in _history():
        log(event)
    live = _tables(projection)
    assert [(u, admin) for u, admin, *_ in live["users"]] == [
        ("alice", True),
        ("bob", False),
        ("carol", False),
    ]
    assert ("password", "bob", "bob", "h-b2") in live["credentials"]
    assert ("password", "carol", "carol", "h-c2") in live["credentials"]
    assert [row[:2] for row in live["credentials"] if row[0] == "token"] == [("token", "t2")]
    assert [(t[0], t[-1]) for t in live["tokens"]] == [("t1", True), ("t2", False)]
    perms = [row[:4] for row in live["permissions"]]
    assert perms == [("alice", "experiment", "1", "MANAGE"), ("bob", "experiment", "1", "EDIT")]

    projection.rebuild()
    assert _tables(projection) == live
    one_batch = Projection(ledger)
    try:
        assert _tables(one_batch) == live
    finally:
        one_batch.close()


def test_account_events_summary_shows_no_hash(projection, log):
    log(*_history())
    summaries = " ".join(s for (s,) in projection.read("SELECT summary FROM events"))
    assert "EDIT on experiment 1 to bob" in summaries
    assert "h-b" not in summaries and "th1" not in summaries


def test_sql_endpoint_cannot_read_hashes(projection, log):
    log(*_history())
    for table in ("credentials", "account_events"):
        try:
            projection.sql(f"SELECT * FROM {table}")
        except Exception as exc:
            assert "h-" not in str(exc)
        else:
            raise AssertionError(f"{table} was readable")
    assert projection.sql("SELECT count(*) AS n FROM users").to_pylist() == [{"n": 3}]
