"""Who a request is: credentials the mlflow client sends, tokens, what a wrong or malformed one
gets, the credential cache dropped on change, the CLI on the store, rebuilds, and listening."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException
from trackledger.api.auth.authn import Throttle

from tests.api.conftest import API, ServerProcess, free_port, ledger_events, mlflow_error, trackledger
from tests.auth.conftest import ADMIN, ALICE, BOB, event_count, http_as, signed_in

pytestmark = pytest.mark.e2e  # a server process


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        _basic("alice:wrong-password"),
        _basic("nobody:whatever"),
        _basic("alice"),  # no colon
        _basic(":alice-password-1"),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic",
        "Bearer",
        "Bearer not-a-token",
        "Bearer tl_deadbeef0000_forged",
        "Digest username=alice",
        "alice:alice-password-1",
    ],
)
def test_wrong_or_malformed_credentials_are_401_and_append_nothing(
    auth_server, users, admin_http, authorization
):
    before = event_count(admin_http)
    with http_as(auth_server, None) as client:
        resp = client.post(
            f"{API}/experiments/create", json={"name": "never"}, headers={"Authorization": authorization}
        )
    mlflow_error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers["www-authenticate"].startswith("Basic")
    assert event_count(admin_http) == before


def test_health_and_version_need_no_credentials(auth_server):
    with http_as(auth_server, None) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/version").status_code == 200


def test_token_from_the_api_works_for_the_mlflow_client_until_revoked(auth_server, users):
    client = MlflowClient(auth_server.url)
    with http_as(auth_server, BOB) as bob:
        created = bob.post("/api/ledger/tokens", json={"description": "ci"}).json()
        assert created["username"] == "bob" and created["expires_at"] is None
        listed = bob.get("/api/ledger/tokens").json()["tokens"]
        assert [t["token_id"] for t in listed] == [created["token_id"]]
        assert created["token"] not in str(listed)
    with signed_in(token=created["token"]):
        experiment_id = client.create_experiment("made-with-a-token")
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "m", 1.0)
    with http_as(auth_server, ADMIN) as admin:
        events = ledger_events(admin, run_id=run.info.run_id)
        assert {(e["actor"], e["actor_verified"]) for e in events} == {("bob", True)}
        created_event = ledger_events(admin, type="token_created")[-1]
        assert created_event["token_hash"] == "REDACTED"
    with http_as(auth_server, BOB) as bob:
        assert (
            bob.post("/api/ledger/tokens/revoke", json={"token_id": created["token_id"]}).status_code == 200
        )
    with signed_in(token=created["token"]), pytest.raises(RestException, match="UNAUTHENTICATED"):
        client.get_run(run.info.run_id)


def test_expired_token_is_refused(auth_server, users):
    with http_as(auth_server, ALICE) as alice:
        created = alice.post("/api/ledger/tokens", json={"expires_in_days": 1 / 86_400}).json()  # one second
    with http_as(auth_server, None) as client:
        bearer = {"Authorization": f"Bearer {created['token']}"}
        deadline = time.monotonic() + 30
        while (
            client.get(f"{API}/experiments/get", params={"experiment_id": "0"}, headers=bearer).status_code
            == 200
        ):
            assert time.monotonic() < deadline, "the token never expired"
            time.sleep(0.2)
        resp = client.get(f"{API}/experiments/get", params={"experiment_id": "0"}, headers=bearer)
        mlflow_error(resp, 401, "UNAUTHENTICATED")
        assert "expired" in resp.json()["message"]


@pytest.mark.parametrize("days", [0, -1, "soon", 10**9, True])
def test_bad_token_expiry_is_400(auth_server, users, admin_http, days):
    before = event_count(admin_http)
    mlflow_error(
        admin_http.post("/api/ledger/tokens", json={"expires_in_days": days}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert event_count(admin_http) == before


def test_someone_elses_token_is_for_admins(auth_server, users):
    with http_as(auth_server, BOB) as bob:
        mlflow_error(bob.post("/api/ledger/tokens", json={"username": "alice"}), 403, "PERMISSION_DENIED")
        mlflow_error(bob.get("/api/ledger/tokens", params={"username": "alice"}), 403, "PERMISSION_DENIED")


def test_a_changed_password_drops_the_cached_credential(auth_server, users):
    """The old password was verified (and cached) just before; after the change it is refused."""
    with http_as(auth_server, ("carol", "carol-password-1")) as old:
        assert old.get(f"{API}/users/current").status_code == 200
        with signed_in(ADMIN):
            users.update_user_password("carol", "carol-password-2")
        mlflow_error(old.get(f"{API}/users/current"), 401, "UNAUTHENTICATED")
    with http_as(auth_server, ("carol", "carol-password-2")) as new:
        assert new.get(f"{API}/users/current").json()["user"]["username"] == "carol"
    change = ledger_events(http_as(auth_server, ADMIN), type="user_password_changed")[-1]
    assert (change["actor"], change["username"], change["password_hash"]) == ("admin", "carol", "REDACTED")


def test_failures_slow_down_that_user_and_that_address_only():
    throttle = Throttle(free=3)
    for _ in range(5):
        throttle.failed("user:alice", "addr:10.0.0.1")
    assert throttle.delay("user:alice", "addr:10.0.0.9") > 0
    assert throttle.delay("user:bob", "addr:10.0.0.1") > 0
    assert throttle.delay("user:bob", "addr:10.0.0.2") == 0
    throttle.succeeded("user:alice")
    assert throttle.delay("user:alice", "addr:10.0.0.9") == 0


def test_accounts_and_grants_survive_a_rebuild(tmp_path):
    store = str(tmp_path / "data")
    (tmp_path / "pw").write_text("root-password-1\n")
    created = trackledger(
        "users", "create", "root", "--admin", "--password-file", str(tmp_path / "pw"), "--store", store
    )
    assert created.returncode == 0, created.stderr
    again = trackledger("users", "create", "root", "--password-file", str(tmp_path / "pw"), "--store", store)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    odd = trackledger("users", "create", "../x", "--password-file", str(tmp_path / "pw"), "--store", store)
    assert odd.returncode == 1 and "username" in odd.stderr
    piped = subprocess.run(
        [sys.executable, "-m", "trackledger", "users", "create", "eve", "--store", store],
        input="eve-password-1\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    token = trackledger("tokens", "create", "--user", "eve", "--expires", "30d", "--store", store)
    assert token.returncode == 0 and token.stdout.startswith("tl_"), token.stderr
    assert (
        trackledger("tokens", "create", "--user", "eve", "--expires", "soon", "--store", store).returncode
        == 1
    )

    server = ServerProcess(store, tmp_path, args=("--auth",)).start()
    try:
        with signed_in(("root", "root-password-1")):
            client = MlflowClient(server.url)
            experiment_id = client.create_experiment("kept")
            from mlflow.server.auth.client import AuthServiceClient

            AuthServiceClient(server.url).grant_user_permission("eve", "experiment", experiment_id, "EDIT")
    finally:
        assert server.stop() == 0
    rebuilt = trackledger("rebuild", "--store", store)
    assert rebuilt.returncode == 0, rebuilt.stderr
    server.start()
    try:
        with signed_in(token=token.stdout.strip()):
            run = MlflowClient(server.url).create_run(experiment_id)  # eve's EDIT survived the rebuild
        with http_as(server, ("eve", "eve-password-1")) as eve:
            assert eve.get(f"{API}/runs/get", params={"run_id": run.info.run_id}).status_code == 200
    finally:
        assert server.stop() == 0
    listed = trackledger("users", "list", "--store", store)
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["eve", "root"]


def test_a_non_loopback_address_needs_auth(tmp_path):
    refused = trackledger(
        "server", "--store", str(tmp_path / "d"), "--host", "0.0.0.0", "--port", str(free_port())
    )
    assert refused.returncode == 1
    assert "--auth" in refused.stderr and refused.stderr.count("\n") == 1
