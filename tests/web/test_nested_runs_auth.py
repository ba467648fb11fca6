"""Nested runs and audit entries under --auth, in Chromium: a child run in an experiment bob may
not read appears under its parent for alice but not for bob, and an audit entry shows the verified
actor with the user the client claimed."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.conftest import API
from tests.auth.conftest import ALICE, BOB, start_auth_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
PARENT_TAG = "mlflow.parentRunId"


def create_run(client: httpx.Client, experiment_id: str, name: str, tags: dict[str, str]) -> str:
    answer = client.post(
        f"{API}/runs/create",
        json={
            "experiment_id": experiment_id,
            "run_name": name,
            "start_time": 1_764_000_000_000,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        },
    )
    answer.raise_for_status()
    return answer.json()["run"]["info"]["run_id"]


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    """alice's parent run in a shared experiment (bob: EDIT) with a child there and a child in her
    private experiment (bob: NO_PERMISSIONS); bob's run in the shared one, claiming to be carol."""
    server = start_auth_server(tmp_path_factory.mktemp("nested-auth"), (ALICE, BOB))
    ids: dict[str, str] = {}
    with httpx.Client(base_url=server.url, auth=ALICE, timeout=60) as alice:
        shared = alice.post(f"{API}/experiments/create", json={"name": "shared"}).json()["experiment_id"]
        private = alice.post(f"{API}/experiments/create", json={"name": "private"}).json()["experiment_id"]
        for experiment_id, permission in ((private, "NO_PERMISSIONS"), (shared, "EDIT")):
            alice.post(
                "/api/3.0/mlflow/users/permissions/grant",
                json={
                    "username": "bob",
                    "resource_type": "experiment",
                    "resource_id": experiment_id,
                    "permission": permission,
                },
            ).raise_for_status()
        ids["shared"] = shared
        ids["parent"] = create_run(alice, shared, "search-0", {})
        ids["seen"] = create_run(alice, shared, "fold-seen", {PARENT_TAG: ids["parent"]})
        ids["hidden"] = create_run(alice, private, "fold-hidden", {PARENT_TAG: ids["parent"]})
    with httpx.Client(base_url=server.url, auth=BOB, timeout=60) as bob:
        ids["bob"] = create_run(bob, shared, "bob-claims-carol", {"mlflow.user": "carol"})
    server.ids = ids
    yield server
    if server.proc.poll() is None:
        assert server.stop() == 0, server.read_log()


def signed_in(browser, server, user: tuple[str, str]):
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#signed-in")
    return context, page


@pytest.mark.parametrize(("user", "children"), [(ALICE, ["fold-hidden", "fold-seen"]), (BOB, ["fold-seen"])])
def test_a_child_in_an_experiment_bob_may_not_read_is_not_under_the_parent_he_sees(
    browser, nested, user, children
):
    ids = nested.ids
    context, page = signed_in(browser, nested, user)
    try:
        page.goto(f"/runs/{ids['parent']}")
        listed = page.locator("#child-runs tbody tr td:first-child")
        expect(listed).to_have_count(len(children))
        assert sorted(listed.all_inner_texts()) == children
        expect(page.locator(".page-head .meta")).to_contain_text(f"{len(children)} child run")

        page.goto(f"/experiments/{ids['shared']}")
        under = page.locator(f"#runs tr[data-parent='{ids['parent']}']")
        expect(under).to_have_count(1)
        expect(under).to_contain_text("fold-seen")
        page.goto(f"/runs/{ids['hidden']}")
        if user == BOB:
            expect(page.locator("h1")).to_have_text("Run not found")
        else:
            expect(page.locator("#parent-link")).to_have_text("search-0")
    finally:
        context.close()


def test_an_audit_entry_shows_the_verified_actor_and_the_user_the_client_claimed(browser, nested):
    context, page = signed_in(browser, nested, ALICE)
    try:
        page.goto("/audit?type=run_created")
        row = page.locator("#events tbody tr", has_text="bob-claims-carol")
        expect(row.locator("td.actor")).to_contain_text("bob")
        expect(row.locator("td.actor .verified")).to_be_visible()
        expect(row.locator("td.actor .claimed")).to_have_text("claimed carol")
        alices = page.locator("#events tbody tr", has_text="fold-seen")
        expect(alices.locator("td.actor .claimed")).to_have_count(0)  # alice claimed nobody else
    finally:
        context.close()
