"""Who may do what: the seed scenario with alice and bob, MLflow's AuthServiceClient end to end,
registered models, and the audit of grants."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.entities import Param
from mlflow.exceptions import MlflowException, RestException

from tests.api.conftest import API, ledger_events, mlflow_error
from tests.auth.conftest import ADMIN, ALICE, AUTH_API, BOB, CAROL, event_count, http_as, signed_in

pytestmark = pytest.mark.e2e  # a server process


@pytest.fixture(scope="module")
def seeded(auth_server, users):
    """alice and bob each create an experiment and a run with their own credentials."""
    client = MlflowClient(auth_server.url)
    runs = {}
    for user in (ALICE, BOB):
        with signed_in(user):
            experiment_id = client.create_experiment(f"{user[0]}-experiment")
            run = client.create_run(experiment_id, tags={"mlflow.user": f"claimed-{user[0]}"})
            client.log_metric(run.info.run_id, "loss", 0.5)
            runs[user[0]] = (experiment_id, run.info.run_id)
    return client, runs


def _denied(call) -> None:
    with pytest.raises(RestException) as caught:
        call()
    assert caught.value.error_code == "PERMISSION_DENIED", caught.value


def test_runs_land_with_verified_actors_and_claimed_users_kept(seeded, admin_http):
    _client, runs = seeded
    for username in ("alice", "bob"):
        events = ledger_events(admin_http, run_id=runs[username][1])
        assert events and {(e["actor"], e["actor_verified"]) for e in events} == {(username, True)}
    run = admin_http.get(f"{API}/runs/get", params={"run_id": runs["alice"][1]}).json()["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.user"] == "claimed-alice"  # what the client sent, as in MLflow
    rows = admin_http.post(
        "/api/sql",
        json={"query": f"SELECT user_id, created_by FROM runs WHERE run_id = '{runs['alice'][1]}'"},
    ).json()["rows"]
    assert rows == [["claimed-alice", "alice"]]  # the audit shows both


def test_bob_reads_but_cannot_change_alice_run_until_granted(seeded, admin_http, users):
    client, runs = seeded
    experiment_id, run_id = runs["alice"]
    with signed_in(BOB):
        assert client.get_run(run_id).data.metrics == {"loss": 0.5}  # READ, the default
        before = event_count(admin_http)
        _denied(lambda: client.log_metric(run_id, "loss", 0.1))
        _denied(lambda: client.log_batch(run_id, params=[Param("p", "1")]))
        _denied(lambda: client.set_tag(run_id, "k", "v"))
        _denied(lambda: client.delete_run(run_id))
        _denied(lambda: client.create_run(experiment_id))
        _denied(lambda: client.delete_experiment(experiment_id))
        _denied(lambda: client.create_logged_model(experiment_id, source_run_id=run_id))
        assert event_count(admin_http) == before  # nothing appended

    with signed_in(ADMIN):
        users.grant_user_permission("bob", "experiment", experiment_id, "EDIT")
    with signed_in(BOB):
        client.log_metric(run_id, "loss", 0.1)
        client.set_tag(run_id, "k", "v")
        _denied(lambda: client.delete_run(run_id))  # deleting needs MANAGE, as in MLflow
    with signed_in(ADMIN):
        users.revoke_user_permission("bob", "experiment", experiment_id)
        users.grant_user_permission("bob", "experiment", experiment_id, "MANAGE")
    with signed_in(BOB):
        client.delete_run(run_id)
        client.restore_run(run_id)
    grants = ledger_events(admin_http, type="permission_granted", experiment_id=experiment_id)
    assert [(e["actor"], e["username"], e["permission"]) for e in grants] == [
        ("admin", "bob", "EDIT"),
        ("admin", "bob", "MANAGE"),
    ]
    revokes = ledger_events(admin_http, type="permission_revoked", experiment_id=experiment_id)
    assert [(e["actor"], e["actor_verified"], e["username"]) for e in revokes] == [("admin", True, "bob")]


def test_anonymous_gets_401(seeded, auth_server):
    _client, runs = seeded
    with http_as(auth_server, None) as anonymous:
        resp = anonymous.get(f"{API}/runs/get", params={"run_id": runs["alice"][1]})
        mlflow_error(resp, 401, "UNAUTHENTICATED")
        assert resp.headers["www-authenticate"].startswith("Basic")
    with signed_in(None), pytest.raises(MlflowException):
        MlflowClient(auth_server.url).get_run(runs["alice"][1])


def test_creator_manages_and_may_grant_others(seeded, users):
    client, runs = seeded
    experiment_id, _run_id = runs["bob"]
    with signed_in(BOB):
        assert users.get_user_permission("bob", "experiment", experiment_id).permission == "MANAGE"
        users.grant_user_permission("carol", "experiment", experiment_id, "EDIT")
        assert users.get_user_permission("carol", "experiment", experiment_id).permission == "EDIT"
    with signed_in(CAROL):
        _denied(lambda: users.grant_user_permission("alice", "experiment", experiment_id, "READ"))
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "m", 1)


def test_auth_service_client_user_flows(auth_server, users, admin_http):
    with signed_in(ADMIN):
        user = users.create_user("dave", "dave-password-1")
        assert (user.username, user.is_admin) == ("dave", False)
        assert users.get_user("dave").username == "dave"
        users.update_user_admin("dave", True)
        assert users.get_user("dave").is_admin is True
        users.update_user_admin("dave", False)
        users.update_user_password("dave", "dave-password-2")
        with pytest.raises(RestException, match="RESOURCE_ALREADY_EXISTS"):
            users.create_user("dave", "x")
        with pytest.raises(RestException, match="RESOURCE_DOES_NOT_EXIST"):
            users.get_user("nobody")
    with signed_in(("dave", "dave-password-2")):
        assert users.get_user("dave").is_admin is False  # one may read oneself
        with pytest.raises(RestException, match="Current password"):
            users.update_user_password("dave", "dave-password-3")
        users.update_user_password("dave", "dave-password-3", current_password="dave-password-2")
        with pytest.raises(RestException, match="UNAUTHENTICATED"):  # the old password is gone
            users.get_user("dave")
    with signed_in(("dave", "dave-password-3")):
        _denied(lambda: users.create_user("eve", "eve-password"))
        _denied(lambda: users.get_user("alice"))
        _denied(lambda: users.update_user_admin("dave", True))
    listed = admin_http.get(f"{API}/users/list").json()["users"]
    assert {"admin", "alice", "bob", "carol", "dave"} <= {u["username"] for u in listed}
    with http_as(auth_server, ("dave", "dave-password-3")) as dave:
        assert dave.get(f"{API}/users/current").json()["user"]["username"] == "dave"
        assert dave.get("/api/3.0/mlflow/users/current/permissions").json() == {
            "is_admin": False,
            "permissions": [],
        }
    with signed_in(ADMIN):
        with pytest.raises(RestException, match="cannot delete their own"):
            users.delete_user("admin")
        users.delete_user("dave")
        with pytest.raises(RestException, match="RESOURCE_DOES_NOT_EXIST"):
            users.get_user("dave")
    with http_as(auth_server, ("dave", "dave-password-3")) as dave:
        mlflow_error(dave.get(f"{API}/users/current"), 401, "UNAUTHENTICATED")
    deleted = ledger_events(admin_http, type="user_deleted")
    assert [(e["actor"], e["username"]) for e in deleted] == [("admin", "dave")]


def test_registered_model_permissions_follow_renames(seeded, users, admin_http):
    client, _runs = seeded
    with signed_in(ALICE):
        client.create_registered_model("alice-model")
        assert users.get_user_permission("alice", "registered_model", "alice-model").permission == "MANAGE"
    with signed_in(BOB):
        assert client.get_registered_model("alice-model").name == "alice-model"
        _denied(lambda: client.update_registered_model("alice-model", description="mine"))
        _denied(lambda: client.delete_registered_model("alice-model"))
    with signed_in(ALICE):
        users.grant_user_permission("bob", "registered_model", "alice-model", "EDIT")
        client.rename_registered_model("alice-model", "alice-model-2")
    with signed_in(BOB):
        client.update_registered_model("alice-model-2", description="edited by bob")
        assert users.get_user_permission("bob", "registered_model", "alice-model-2").permission == "EDIT"
    listed = admin_http.get(f"{AUTH_API}/list", params={"username": "bob"}).json()
    patterns = {(p["resource_type"], p["resource_pattern"], p["permission"]) for p in listed["permissions"]}
    assert ("registered_model", "alice-model-2", "EDIT") in patterns


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"username": "bob", "resource_type": "experiment", "resource_id": "999", "permission": "READ"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            {
                "username": "bob",
                "resource_type": "registered_model",
                "resource_id": "no-such-model",
                "permission": "READ",
            },
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            {"username": "nobody", "resource_type": "experiment", "resource_id": "0", "permission": "READ"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            {"username": "bob", "resource_type": "experiment", "resource_id": "0", "permission": "OWNER"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"username": "bob", "resource_type": "prompt", "resource_id": "0", "permission": "READ"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"username": "bob", "resource_type": "experiment", "permission": "READ"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
    ],
)
def test_bad_grants_are_4xx_and_append_nothing(users, admin_http, body, status, code):
    before = event_count(admin_http)
    mlflow_error(admin_http.post(f"{AUTH_API}/grant", json=body), status, code)
    assert event_count(admin_http) == before


@pytest.mark.parametrize(
    "body",
    [
        {"username": "../etc", "password": "p"},
        {"username": "", "password": "p"},
        {"username": " alice", "password": "p"},
        {"username": "x" * 65, "password": "p"},
        {"username": "émile\u0000", "password": "p"},
        {"username": "fred", "password": ""},
        {"username": ["fred"], "password": "p"},
        {"username": "fred"},
    ],
)
def test_odd_users_are_refused(users, admin_http, body):
    before = event_count(admin_http)
    mlflow_error(admin_http.post(f"{API}/users/create", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert event_count(admin_http) == before


def test_a_run_without_experiment_goes_to_default_which_needs_edit_too(auth_server, users, admin_http):
    before = event_count(admin_http)
    with http_as(auth_server, BOB) as bob:
        mlflow_error(bob.post(f"{API}/runs/create", json={"start_time": 1}), 403, "PERMISSION_DENIED")
    assert event_count(admin_http) == before
    assert admin_http.post(f"{API}/runs/create", json={"start_time": 1}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"{AUTH_API}/grant", {"username": ["bob"], "resource_type": "experiment", "resource_id": "0",
                                      "permission": "READ"}),
        ("POST", f"{AUTH_API}/grant", {"username": "bob", "resource_type": "experiment", "resource_id": "0",
                                      "permission": ["READ"]}),
        ("POST", f"{AUTH_API}/revoke", {"username": {"u": 1}, "resource_type": "experiment",
                                       "resource_id": "0"}),
        ("PATCH", f"{API}/users/update-admin", {"username": ["bob"], "is_admin": True}),
        ("PATCH", f"{API}/users/update-password", {"username": ["bob"], "password": "p-1"}),
        ("DELETE", f"{API}/users/delete", {"username": ["bob"]}),
        ("POST", "/api/ledger/tokens", {"username": ["bob"]}),
        ("POST", "/api/ledger/tokens/revoke", {"token_id": ["t"]}),
    ],
)  # fmt: skip
def test_account_fields_of_the_wrong_type_are_400s(users, admin_http, method, path, body):
    before = event_count(admin_http)
    mlflow_error(admin_http.request(method, path, json=body), 400, "INVALID_PARAMETER_VALUE")
    assert event_count(admin_http) == before
