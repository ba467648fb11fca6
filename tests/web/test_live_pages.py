"""Live pages in a real browser: a run's charts and an experiment's runs table follow the ledger's
event stream, without reloading."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.conftest import API

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def http(web_server):
    with httpx.Client(base_url=web_server.url, timeout=60) as client:
        yield client


def create_run(http, experiment_id: str, name: str) -> str:
    body = {"experiment_id": experiment_id, "start_time": 1, "run_name": name}
    return http.post(f"{API}/runs/create", json=body).json()["run"]["info"]["run_id"]


def log(http, run_id: str, key: str, step: int) -> None:
    body = {"run_id": run_id, "key": key, "value": 1.0 / (step + 1), "timestamp": 1, "step": step}
    assert http.post(f"{API}/runs/log-metric", json=body).status_code == 200


def points(page, key: str) -> int:
    return page.evaluate(
        "key => { const c = document.querySelector(`figure.chart[data-key='${key}'] .chart-canvas`);"
        " return c && c.data ? c.data[0].x.length : 0; }",
        key,
    )


def test_a_run_page_charts_points_as_they_are_logged(page, http):
    experiment_id = http.post(f"{API}/experiments/create", json={"name": "live-run"}).json()["experiment_id"]
    run_id = create_run(http, experiment_id, "live")
    for step in (0, 1):
        log(http, run_id, "loss", step)
    page.goto(f"/runs/{run_id}")
    page.wait_for_function("() => document.querySelector('figure.chart .chart-canvas').data")
    assert points(page, "loss") == 2
    log(http, run_id, "loss", 2)
    page.wait_for_function(
        "() => document.querySelector(\"figure.chart[data-key='loss'] .chart-canvas\").data[0].x.length === 3"
    )
    log(http, run_id, "accuracy", 0)  # a new metric: its chart appears
    expect(page.locator("figure.chart[data-key='accuracy']")).to_have_count(1)
    page.wait_for_function(
        "() => document.querySelector(\"figure.chart[data-key='accuracy'] .chart-canvas\").data"
    )
    assert points(page, "loss") == 3 and points(page, "accuracy") == 1


def test_an_experiment_runs_table_shows_new_runs_as_they_start(page, http):
    experiment_id = http.post(f"{API}/experiments/create", json={"name": "live-table"}).json()[
        "experiment_id"
    ]
    create_run(http, experiment_id, "first")
    page.goto(f"/experiments/{experiment_id}")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    page.locator('input[name="run"]').first.check()
    create_run(http, experiment_id, "second")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    expect(page.locator("#runs")).to_contain_text("second")
    expect(page.locator('input[name="run"]:checked')).to_have_count(1)  # the ticked run stays ticked
