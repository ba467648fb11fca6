"""The model registry in the web page with --auth, in Chromium: bob sees only the models he may read
(nothing of alice's private one, not even that it exists on its page), cannot change a model he may
only read nor register into one, and the page's writes carry the signed-in user as their actor."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.conftest import API
from tests.auth.conftest import ADMIN, ALICE, BOB, start_auth_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SECRET = "alice's private notes"


def _run(client: httpx.Client, experiment: str) -> str:
    experiment_id = client.post(f"{API}/experiments/create", json={"name": experiment}).json()[
        "experiment_id"
    ]
    created = client.post(f"{API}/runs/create", json={"experiment_id": experiment_id})
    return created.json()["run"]["info"]["run_id"]


@pytest.fixture(scope="module")
def registry_web(tmp_path_factory):
    """alice's private model (bob has NO_PERMISSIONS on it) and her shared one (bob may READ, as
    every user may by default), each with a version of alice's run; bob's own run."""
    server = start_auth_server(tmp_path_factory.mktemp("registry-web"), (ALICE, BOB))
    ids = {}
    with httpx.Client(base_url=server.url, auth=ALICE, timeout=60) as alice:
        run_id = _run(alice, "alice-exp")
        for name in ("alice-private", "alice-shared"):
            alice.post(f"{API}/registered-models/create", json={"name": name, "description": SECRET})
            version = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
            alice.post(f"{API}/model-versions/create", json=version).raise_for_status()
        alice.post(
            "/api/3.0/mlflow/users/permissions/grant",
            json={
                "username": "bob",
                "resource_type": "registered_model",
                "resource_id": "alice-private",
                "permission": "NO_PERMISSIONS",
            },
        ).raise_for_status()
    with httpx.Client(base_url=server.url, auth=BOB, timeout=60) as bob:
        ids["bob_run"] = _run(bob, "bob-exp")
    yield server, ids
    if server.proc.poll() is None:
        assert server.stop() == 0, server.read_log()


@pytest.fixture
def bob_page(browser, registry_web):
    server, _ = registry_web
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", BOB[0])
    page.fill("input[name=password]", BOB[1])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#signed-in")
    yield page
    context.close()


def _registry_event_count(server) -> int:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as admin:
        events = admin.get("/api/ledger/events", params={"limit": 10_000}).json()["events"]
    return sum(e["type"].startswith(("registered_model_", "model_version_")) for e in events)


def test_bob_sees_neither_alices_private_model_nor_that_it_exists(bob_page, registry_web):
    page = bob_page
    page.goto("/models")
    expect(page.locator("#models tr[data-model='alice-shared']")).to_have_count(1)
    expect(page.locator("#models")).not_to_contain_text("alice-private")
    page.goto("/models?filter=name = 'alice-private'")
    expect(page.locator("#models")).to_have_count(0)
    response = page.goto("/models/alice-private")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Model not found")
    assert SECRET not in page.content()

    page.goto("/models/alice-shared")  # readable: its versions, actors and history
    expect(page.locator("#version-1 .facts")).to_contain_text("by alice verified")
    expect(page.locator("#history")).to_contain_text("registered model created")


def test_bob_cannot_alias_a_model_he_may_only_read(bob_page, registry_web):
    server, _ = registry_web
    before = _registry_event_count(server)
    page = bob_page
    page.goto("/models/alice-shared")
    page.fill("#version-1 .set-alias input[name=alias]", "bobs-pick")
    page.locator("#version-1 .set-alias button").click()
    expect(page.locator("#version-1 .set-alias .form-error")).to_contain_text("Permission denied")
    assert _registry_event_count(server) == before


def test_bob_registers_his_run_as_himself_but_not_into_alices_model(bob_page, registry_web):
    server, ids = registry_web
    before = _registry_event_count(server)
    page = bob_page
    page.goto(f"/runs/{ids['bob_run']}")
    page.locator("details.register-model summary").click()
    page.fill("#register-model input[name=name]", "alice-private")
    page.fill("#register-model input[name=path]", "model")
    page.locator("#register-model button[type=submit]").click()
    expect(page.locator("#register-model .form-error")).to_contain_text("Permission denied")
    assert _registry_event_count(server) == before

    page.fill("#register-model input[name=name]", "bob-model")
    page.locator("#register-model button[type=submit]").click()
    page.wait_for_url("**/models/bob-model#version-1")
    expect(page.locator("#version-1 .facts")).to_contain_text("by bob verified")
    expect(page.locator("#history tbody tr").first).to_contain_text("bob")
    page.goto(f"/runs/{ids['bob_run']}")
    expect(page.locator("#registered-as")).to_have_text("registered as bob-model v1")


def test_the_ledger_and_sql_show_bob_the_registry_events_of_the_models_he_may_read(registry_web):
    server, _ = registry_web
    with httpx.Client(base_url=server.url, auth=BOB, timeout=60) as bob:
        events = bob.get("/api/ledger/events", params={"limit": 10_000}).json()["events"]
        names = {e.get("name") for e in events if e["type"].startswith("registered_model_")}
        rows = bob.post("/api/sql", json={"query": "SELECT summary FROM events"}).json()["rows"]
    assert "alice-shared" in names and "alice-private" not in names
    summaries = {summary for (summary,) in rows}
    assert "alice-shared v1" in summaries
    assert not any("alice-private" in s for s in summaries)
