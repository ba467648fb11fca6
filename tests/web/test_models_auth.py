"""The model registry in the web page with --auth, in Chromium: bob sees only the models he may read
(nothing of alice's private one, not even that it exists on its page), is shown no control to change
a model he may only read (and the routes refuse him anyway) but those of one he may edit, cannot
register into a model he may only read, and the page's writes carry the signed-in user as their
actor. A model of 120 versions is paged."""

from __future__ import annotations

import re

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


BIG_VERSIONS = 120  # of alice-big; version DELETED is deleted, CHAMPION has the alias, PRODUCTION the stage
DELETED, CHAMPION, PRODUCTION = 110, 3, 50


@pytest.fixture(scope="module")
def registry_web(tmp_path_factory):
    """alice's models, each with versions of alice's run: her private one (bob has NO_PERMISSIONS
    on it; 30 versions), her shared one (bob may READ, as every user may by default), one bob may
    EDIT, and alice-big with 120 versions (bob may READ); bob's own run."""
    server = start_auth_server(tmp_path_factory.mktemp("registry-web"), (ALICE, BOB))
    ids = {}
    with httpx.Client(base_url=server.url, auth=ALICE, timeout=60) as alice:
        run_id = _run(alice, "alice-exp")
        counts = {"alice-private": 30, "alice-shared": 1, "alice-editable": 1, "alice-big": BIG_VERSIONS}
        for name, count in counts.items():
            alice.post(f"{API}/registered-models/create", json={"name": name, "description": SECRET})
            version = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
            for _ in range(count):
                alice.post(f"{API}/model-versions/create", json=version).raise_for_status()
        big = {"name": "alice-big"}
        alice.delete(f"{API}/model-versions/delete", params={**big, "version": DELETED}).raise_for_status()
        alias = {**big, "alias": "champion", "version": str(CHAMPION)}
        alice.post(f"{API}/registered-models/alias", json=alias).raise_for_status()
        stage = {**big, "version": str(PRODUCTION), "stage": "Production", "archive_existing_versions": False}
        alice.post(f"{API}/model-versions/transition-stage", json=stage).raise_for_status()
        for name, permission in (("alice-private", "NO_PERMISSIONS"), ("alice-editable", "EDIT")):
            alice.post(
                "/api/3.0/mlflow/users/permissions/grant",
                json={
                    "username": "bob",
                    "resource_type": "registered_model",
                    "resource_id": name,
                    "permission": permission,
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


def test_bob_is_shown_the_controls_of_a_model_he_may_edit_only(bob_page, registry_web, screenshot):
    server, _ = registry_web
    before = _registry_event_count(server)
    page = bob_page
    page.goto("/models/alice-shared")
    expect(page.locator("#version-1 .facts")).to_contain_text("by alice")  # what he may read is there
    expect(page.locator("form.registry-form")).to_have_count(0)
    expect(page.locator("details.edit")).to_have_count(0)
    expect(page.locator(".version-actions")).to_have_count(0)
    page.mouse.move(0, 0)
    screenshot(page, "model-reader")
    # The route refuses him what the page does not offer.
    refused = page.evaluate(
        """async () => {
             const alias = { name: "alice-shared", alias: "bobs-pick", version: "1" };
             try { await postJson("/ajax-api/2.0/mlflow/registered-models/alias", alias); return null; }
             catch (err) { return [err.status, err.message]; } }"""
    )
    assert refused is not None and refused[0] == 403 and "Permission denied" in refused[1]
    assert _registry_event_count(server) == before

    page.goto("/models/alice-editable")  # one he may EDIT: its controls are there, and work
    for form in (
        "#model-description form",
        "#model-tags .set-tag",
        "#version-1 .set-alias",
        "#version-1 .transition",
    ):
        expect(page.locator(form)).to_have_count(1)
    page.fill("#version-1 .set-alias input[name=alias]", "bobs-pick")
    with page.expect_navigation():
        page.locator("#version-1 .set-alias button").click()
    expect(page.locator("#version-1 .version-head .alias")).to_have_text("@bobs-pick")
    expect(page.locator("#version-1 .version-head form.alias-chip")).to_have_count(1)  # he may delete it
    expect(page.locator("#history tbody tr").first).to_contain_text("bob")


def _shown_versions(page) -> list[int]:
    return [
        int(v)
        for v in page.locator("#versions article.version").evaluate_all("a => a.map(v => v.dataset.version)")
    ]


def test_a_model_of_120_versions_is_paged_newest_first(bob_page, registry_web, screenshot):
    page = bob_page
    live = [v for v in range(BIG_VERSIONS, 0, -1) if v != DELETED]
    page.goto("/models/alice-big")
    expect(page.locator(".page-head .meta")).to_contain_text(f"{len(live)} versions")
    assert _shown_versions(page) == live[:25]
    pager = page.locator("#versions .pager").first
    expect(pager).to_contain_text(f"1\u201325 of {len(live)} versions")
    expect(pager).to_contain_text("page 1 of 5")
    expect(page.locator("#model-aliases")).to_contain_text(f"@champion version {CHAMPION}")
    expect(page.locator("#model-stages")).to_contain_text(f"Production version {PRODUCTION}")
    page.mouse.move(0, 0)
    screenshot(page, "model-paged")

    pager.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"/models/alice-big\?page=2$"))
    assert _shown_versions(page) == live[25:50]
    expect(page.locator("#versions .pager").first).to_contain_text(f"26\u201350 of {len(live)} versions")

    # The pointers lead to the page their version is on.
    page.locator("#model-aliases a").click()
    expect(page).to_have_url(re.compile(rf"\?page=5#version-{CHAMPION}$"))
    expect(page.locator(f"#version-{CHAMPION} .version-head .alias")).to_have_text("@champion")
    assert _shown_versions(page) == live[100:]
    page.locator("#model-stages a", has_text=f"version {PRODUCTION}").click()
    expect(page).to_have_url(re.compile(rf"\?page=3#version-{PRODUCTION}$"))
    expect(page.locator(f"#version-{PRODUCTION} .version-head .stage")).to_have_text("Production")

    page.goto("/models/alice-big?page=9")  # past the end: says where the versions are
    expect(page.locator("#versions")).to_contain_text("No versions on this page")
    expect(page.locator("#versions article.version")).to_have_count(0)

    for query in ("", "?page=1", "?page=2"):  # a model he may not read: no page tells anything of it
        response = page.goto(f"/models/alice-private{query}")
        assert response.status == 404
        expect(page.locator("h1")).to_have_text("Model not found")
        content = page.content()
        assert (
            SECRET not in content
            and "version-" not in content
            and "versions" not in content.split("<main")[1]
        )


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
