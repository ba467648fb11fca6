"""The web page's chart data follows the reader's permissions: a user without READ on an
experiment gets none of its runs, whatever the filter."""

from __future__ import annotations

import pytest

from tests.api.conftest import API
from tests.auth.conftest import ALICE, AUTH_API, BOB, http_as

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def private_run(auth_server, users):
    """alice's experiment with one run of 50 steps of loss; bob has NO_PERMISSIONS on it."""
    with http_as(auth_server, ALICE) as alice:
        experiment_id = alice.post(f"{API}/experiments/create", json={"name": "alice-charts"}).json()[
            "experiment_id"
        ]
        run_id = alice.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()["run"][
            "info"
        ]["run_id"]
        metrics = [{"key": "loss", "value": 1 / (s + 1), "timestamp": s, "step": s} for s in range(50)]
        alice.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}).raise_for_status()
        alice.post(
            f"{AUTH_API}/grant",
            json={
                "username": BOB[0],
                "resource_type": "experiment",
                "resource_id": experiment_id,
                "permission": "NO_PERMISSIONS",
            },
        ).raise_for_status()
    return experiment_id, run_id


def test_the_owner_gets_the_sampled_lines(auth_server, private_run):
    experiment_id, run_id = private_run
    with http_as(auth_server, ALICE) as alice:
        data = alice.get(f"/experiments/{experiment_id}/charts/data").json()
    assert [run["id"] for run in data["runs"]] == [run_id]
    ((at, steps, _times, _values),) = data["lines"]["series"]["loss"]
    assert at == 0 and steps[0] == 0 and steps[-1] == 49


@pytest.mark.parametrize("query", ["", "?filter=metrics.loss+>+0", "?view=all&line=loss"])
def test_a_reader_without_read_gets_nothing_from_the_chart_data(auth_server, private_run, query):
    experiment_id, run_id = private_run
    with http_as(auth_server, BOB) as bob:
        answer = bob.get(f"/experiments/{experiment_id}/charts/data{query}")
        page = bob.get(f"/experiments/{experiment_id}/charts")
    assert answer.status_code == 404
    assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert run_id not in answer.text
    assert page.status_code == 404 and run_id not in page.text
