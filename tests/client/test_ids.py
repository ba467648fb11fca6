"""The ids the client derives from an Idempotency-Key are the ones the server derives."""

from __future__ import annotations

import pytest
from trackledger_client import ids

from tests.client.conftest import API

pytestmark = pytest.mark.e2e


def test_a_run_created_with_a_key_has_the_id_the_client_derives(http):
    experiment = http.post(f"{API}/experiments/create", json={"name": "ids"}).json()["experiment_id"]
    key = "client-ids-run"
    created = http.post(
        f"{API}/runs/create", json={"experiment_id": experiment}, headers={"Idempotency-Key": key}
    )
    run_id = created.json()["run"]["info"]["run_id"]
    assert run_id == ids.run_id(key)
    events = http.get("/api/ledger/events", params={"run_id": run_id}).json()["events"]
    assert [e["id"] for e in events] == [ids.event_id(key, 0)]


def test_a_logged_model_created_with_a_key_has_the_id_the_client_derives(http):
    experiment = http.post(f"{API}/experiments/create", json={"name": "ids-models"}).json()["experiment_id"]
    key = "client-ids-model"
    created = http.post(
        f"{API}/logged-models",
        json={"experiment_id": experiment, "name": "m"},
        headers={"Idempotency-Key": key},
    )
    assert created.json()["model"]["info"]["model_id"] == ids.logged_model_id(key)


def test_every_event_of_a_keyed_batch_has_the_id_the_client_derives(http):
    experiment = http.post(f"{API}/experiments/create", json={"name": "ids-batch"}).json()["experiment_id"]
    run_id = http.post(f"{API}/runs/create", json={"experiment_id": experiment}).json()["run"]["info"][
        "run_id"
    ]
    key = "client-ids-batch"
    body = {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}]}
    assert http.post(f"{API}/runs/log-batch", json=body, headers={"Idempotency-Key": key}).status_code == 200
    events = http.get("/api/ledger/events", params={"run_id": run_id}).json()["events"]
    assert events[-1]["id"] == ids.event_id(key, 0)
