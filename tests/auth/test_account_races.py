"""Account writes sent at the same instant to a real server: each is decided under the write
service's single writer, so the same name, grant or token change lands once and every other
attempt gets MLflow's clear refusal, with nothing more appended."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from tests.auth.conftest import ADMIN, AUTH_API, event_count, http_as

pytestmark = pytest.mark.e2e
AT_ONCE = 8


def at_once(server, send) -> list[httpx.Response]:
    """``send(client)`` from AT_ONCE threads released together, each with its own connection."""
    barrier = threading.Barrier(AT_ONCE)
    answers: list[httpx.Response] = []

    def worker() -> None:
        with http_as(server, ADMIN) as client:
            client.get("/api/2.0/mlflow/users/current")  # signed in (the credential cached) first
            barrier.wait()
            answers.append(send(client))

    threads = [threading.Thread(target=worker) for _ in range(AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def outcomes(answers: list[httpx.Response]) -> Counter:
    return Counter((a.status_code, a.json().get("error_code")) for a in answers)


def test_one_user_of_a_name_created_at_once(auth_server, admin_http):
    before = event_count(admin_http)
    answers = at_once(
        auth_server,
        lambda c: c.post("/api/2.0/mlflow/users/create", json={"username": "dora", "password": "dora-pw-1"}),
    )
    assert outcomes(answers) == {(200, None): 1, (400, "RESOURCE_ALREADY_EXISTS"): AT_ONCE - 1}
    refusal = next(a.json() for a in answers if a.status_code == 400)
    assert refusal["message"] == "User (username=dora) already exists."
    assert event_count(admin_http) == before + 1
    with http_as(auth_server, ("dora", "dora-pw-1")) as dora:
        assert dora.get("/api/2.0/mlflow/users/current").json()["user"]["username"] == "dora"


def test_one_grant_of_a_permission_made_at_once(auth_server, admin_http):
    admin_http.post("/api/2.0/mlflow/users/create", json={"username": "erin", "password": "erin-pw-1"})
    experiment_id = admin_http.post("/api/2.0/mlflow/experiments/create", json={"name": "raced"}).json()[
        "experiment_id"
    ]
    grant = {"username": "erin", "resource_type": "experiment", "resource_id": experiment_id}
    before = event_count(admin_http)
    answers = at_once(
        auth_server, lambda c: c.post(f"{AUTH_API}/grant", json={**grant, "permission": "EDIT"})
    )
    assert outcomes(answers) == {(200, None): 1, (400, "RESOURCE_ALREADY_EXISTS"): AT_ONCE - 1}
    assert event_count(admin_http) == before + 1

    answers = at_once(auth_server, lambda c: c.post(f"{AUTH_API}/revoke", json=grant))
    assert outcomes(answers) == {(200, None): 1, (404, "RESOURCE_DOES_NOT_EXIST"): AT_ONCE - 1}
    assert event_count(admin_http) == before + 2


def test_a_token_revoked_and_a_user_deleted_at_once_change_once(auth_server, admin_http):
    admin_http.post("/api/2.0/mlflow/users/create", json={"username": "finn", "password": "finn-pw-1"})
    token_id = admin_http.post("/api/ledger/tokens", json={"username": "finn"}).json()["token_id"]
    before = event_count(admin_http)
    answers = at_once(auth_server, lambda c: c.post("/api/ledger/tokens/revoke", json={"token_id": token_id}))
    assert outcomes(answers) == {(200, None): 1, (404, "RESOURCE_DOES_NOT_EXIST"): AT_ONCE - 1}
    assert event_count(admin_http) == before + 1

    answers = at_once(
        auth_server, lambda c: c.request("DELETE", "/api/2.0/mlflow/users/delete", json={"username": "finn"})
    )
    assert outcomes(answers) == {(200, None): 1, (404, "RESOURCE_DOES_NOT_EXIST"): AT_ONCE - 1}
    assert event_count(admin_http) == before + 2
