"""``trackledger import --server URL`` into a server with ``--auth``: the mlflow client's credentials,
an admin only, the importer as the verified actor and the source's users as claimed ones."""

from __future__ import annotations

import sqlite3

import msgspec
import pytest
from trackledger.api.commands.events import format_line
from trackledger.ledger.events import RunCreated

from tests.api.conftest import ledger_events, trackledger
from tests.auth.conftest import ADMIN, BOB, event_count, http_as, start_auth_server

NO_CREDENTIALS = {"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": "", "MLFLOW_TRACKING_TOKEN": ""}


def as_user(user: tuple[str, str]) -> dict[str, str]:
    return {**NO_CREDENTIALS, "MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


@pytest.fixture(scope="module")
def auth_target(tmp_path_factory):
    server = start_auth_server(tmp_path_factory.mktemp("auth-target"), (BOB,))
    yield server
    assert server.stop() == 0, server.read_log()


def import_into(server, mlflow_source, env: dict[str, str]):
    return trackledger(
        "import",
        "--from",
        mlflow_source.db_url,
        "--artifacts-from",
        str(mlflow_source.artifacts),
        "--server",
        server.url,
        env=env,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (NO_CREDENTIALS, "did not accept no credentials (set MLFLOW_TRACKING_USERNAME and _PASSWORD"),
        (
            as_user((ADMIN[0], "wrong-password")),
            "did not accept user 'admin' (MLFLOW_TRACKING_USERNAME/PASSWORD) (401)",
        ),
        (
            {**NO_CREDENTIALS, "MLFLOW_TRACKING_TOKEN": "tl_not-a-token"},
            "did not accept the token in MLFLOW_TRACKING_TOKEN",
        ),
        (
            as_user(BOB),
            "refused user 'bob' (MLFLOW_TRACKING_USERNAME/PASSWORD) (403): importing needs an admin",
        ),
    ],
    ids=["none", "wrong-password", "wrong-token", "not-admin"],
)
def test_credentials_that_are_not_an_admins_are_one_line_and_write_nothing(
    auth_target, mlflow_source, env, expected
):
    with http_as(auth_target, ADMIN) as admin:
        before = event_count(admin)
        out = import_into(auth_target, mlflow_source, env)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trackledger import: error: "), out.stderr
        assert expected in lines[0]
        assert ADMIN[1] not in out.stderr and BOB[1] not in out.stderr
        assert event_count(admin) == before


def test_the_importer_is_the_verified_actor_and_the_source_users_are_claimed(auth_target, mlflow_source):
    out = import_into(auth_target, mlflow_source, as_user(ADMIN))
    assert out.returncode == 0, out.stderr
    with http_as(auth_target, ADMIN) as admin:
        imported = [e for e in ledger_events(admin) if e.get("imported_from")]
        claimed_runs = {e["claimed_actor"] for e in imported if e["type"] == "run_created"}
        audit = admin.post(
            "/api/sql",
            json={
                "query": "SELECT DISTINCT actor, actor_verified, claimed_actor FROM events "
                "WHERE type = 'run_created'"
            },
        ).json()["rows"]
        token = admin.post("/api/ledger/tokens", json={"description": "import"}).json()["token"]
        audit_page = admin.get("/audit", params={"type": "run_created"})
    assert imported and all(e["actor"] == "admin" and e["actor_verified"] for e in imported)
    users = {u for (u,) in sqlite3.connect(mlflow_source.db).execute("SELECT DISTINCT user_id FROM runs")}
    assert claimed_runs == users
    assert sorted(audit) == sorted(["admin", True, user] for user in users)
    assert audit_page.status_code == 200
    assert all(f">claimed {user}</small>" in audit_page.text for user in users)

    # An admin's token works too; the rerun appends nothing.
    again = import_into(auth_target, mlflow_source, {**NO_CREDENTIALS, "MLFLOW_TRACKING_TOKEN": token})
    assert again.returncode == 0, again.stderr
    assert "│ events appended   │        0 │" in again.stdout


def test_offline_imports_record_the_source_users_as_unverified_actors(mlflow_source, tmp_path):
    store = tmp_path / "data"
    out = trackledger(
        "import",
        "--from",
        mlflow_source.db_url,
        "--artifacts-from",
        str(mlflow_source.artifacts),
        "--store",
        str(store),
    )
    assert out.returncode == 0, out.stderr
    events = trackledger("events", "--store", str(store))
    assert events.returncode == 0, events.stderr
    runs = [line for line in events.stdout.splitlines() if "run_created" in line]
    users = {u for (u,) in sqlite3.connect(mlflow_source.db).execute("SELECT DISTINCT user_id FROM runs")}
    assert runs and {line.split()[2] for line in runs} == {f"{u}?" for u in users}


def test_the_event_history_shows_the_verified_importer_and_the_claimed_user():
    event = RunCreated(
        id="e",
        seq=7,
        actor="admin",
        actor_verified=True,
        claimed_actor="alice",
        run_id="r",
        name="n",
        user_id="alice",
        start_time=0,
        artifact_uri="",
    )
    assert "admin for alice?" in format_line(event, "")
    assert " alice? " in format_line(
        msgspec.structs.replace(event, actor="alice", actor_verified=False, claimed_actor=None), ""
    )
