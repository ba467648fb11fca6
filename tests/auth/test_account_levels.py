"""The server's view of accounts, from a real projection: levels, the default permission, what a
user's scope lets a query see, and the cache listeners told of every reload."""

from __future__ import annotations

import duckdb
import pytest
from trackledger.api.auth.accounts import EDIT, MANAGE, NO_PERMISSIONS, READ, Accounts
from trackledger.api.auth.secrets import hash_password, new_token, token_hash, token_id_of, verify_password
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.projections import Projection


def _event(cls, **fields):
    return cls(id=E.new_event_id(), actor=fields.pop("actor", "admin"), **fields)


@pytest.fixture
def projection(tmp_path):
    with Ledger(tmp_path / "store", tmp_path / "state") as ledger:
        proj = Projection(ledger)
        stamped = ledger.append([
            _event(E.UserCreated, username="admin", password_hash="x", is_admin=True),
            _event(E.UserCreated, username="bob", password_hash="y"),
            _event(E.ExperimentCreated, actor="bob", actor_verified=True, experiment_id="1", name="bob's",
                   artifact_location="a", creation_time=1),
            _event(E.ExperimentCreated, actor="admin", actor_verified=True, experiment_id="2", name="other",
                   artifact_location="a", creation_time=1),
            _event(E.ExperimentCreated, actor="admin", actor_verified=True, experiment_id="3", name="shared",
                   artifact_location="a", creation_time=1),
            _event(E.PermissionGranted, username="bob", resource_type="experiment", resource_id="3",
                   permission="EDIT"),
            _event(E.PermissionGranted, username="bob", resource_type="experiment", resource_id="2",
                   permission="NO_PERMISSIONS"),
        ])  # fmt: skip
        proj.submit(stamped)
        proj.flush()
        yield proj
        proj.close()


@pytest.mark.parametrize(
    ("default", "levels", "visible"),
    [
        ("READ", {"1": MANAGE, "2": NO_PERMISSIONS, "3": EDIT, "4": READ}, {"1", "3", "4"}),
        ("NO_PERMISSIONS", {"1": MANAGE, "2": NO_PERMISSIONS, "3": EDIT, "4": NO_PERMISSIONS}, {"1", "3"}),
    ],
)
def test_levels_and_scope_follow_grants_creators_and_the_default(projection, default, levels, visible):
    accounts = Accounts(default)
    accounts.reload(projection)
    assert {eid: accounts.level("bob", "experiment", eid) for eid in levels} == levels
    assert accounts.level("admin", "experiment", "4") == MANAGE and accounts.scope("admin") is None
    scope = accounts.scope("bob")
    assert {eid for eid in ("1", "2", "3", "4") if eid in scope.experiments} == visible
    con = duckdb.connect()
    params: list = []
    clause = scope.experiment_clause("id", params)
    found = con.execute(f"SELECT id FROM (VALUES ('1'), ('2'), ('3'), ('4')) t(id) WHERE {clause}", params)
    assert {row[0] for row in found.fetchall()} == visible
    assert accounts.level("bob", "registered_model", "m") == (READ if default == "READ" else NO_PERMISSIONS)


def test_every_reload_tells_the_credential_caches(projection):
    accounts = Accounts()
    told = []
    accounts.on_reload(lambda: told.append(True))
    accounts.reload(projection)
    accounts.reload(projection)
    assert told == [True, True]


def test_password_hashes_and_tokens():
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("Correct horse", stored)
    assert not verify_password("correct horse", "scrypt$garbage")
    assert hash_password("correct horse") != stored  # salted
    token_id, token = new_token()
    assert token_id_of(token) == token_id and token_id_of("tl_") is None and token_id_of("nope") is None
    assert token_hash(token) != token and len(token_hash(token)) == 64
