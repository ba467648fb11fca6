"""The web page with --auth, in Chromium: signed out it shows nothing private, sign-in sets a
signed HttpOnly SameSite cookie, a user sees only what they may, sign-out ends it, the page's
writes refuse other origins, and an admin manages users and permissions on the admin page."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import API
from tests.auth.conftest import ADMIN, ALICE, BOB, start_auth_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def auth_web(tmp_path_factory):
    """alice's private experiment (bob has NO_PERMISSIONS on it) and bob's own."""
    server = start_auth_server(tmp_path_factory.mktemp("auth-web"), (ALICE, BOB))
    with httpx.Client(base_url=server.url, auth=("alice", "alice-password-1"), timeout=60) as alice:
        private = alice.post(f"{API}/experiments/create", json={"name": "alice-private"}).json()[
            "experiment_id"
        ]
        alice.post(
            "/api/3.0/mlflow/users/permissions/grant",
            json={
                "username": "bob",
                "resource_type": "experiment",
                "resource_id": private,
                "permission": "NO_PERMISSIONS",
            },
        ).raise_for_status()
    with httpx.Client(base_url=server.url, auth=("bob", "bob-password-1"), timeout=60) as bob:
        bob.post(f"{API}/experiments/create", json={"name": "bob-own"}).raise_for_status()
    yield server
    if server.proc.poll() is None:
        assert server.stop() == 0, server.read_log()


def _sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")


def test_signed_out_page_shows_nothing_private_then_bob_signs_in_and_out(browser, auth_web):
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(auth_web.url + "/")
        assert "/login" in page.url
        assert "alice-private" not in page.content() and "bob-own" not in page.content()
        page.goto(auth_web.url + "/audit")
        assert "/login" in page.url and "alice-private" not in page.content()

        _sign_in(page, auth_web.url, "bob", "wrong-password")
        assert page.locator("[role=alert]").inner_text() == "Wrong user name or password."

        _sign_in(page, auth_web.url, "bob", "bob-password-1")
        page.wait_for_selector("#signed-in")
        assert "signed in as bob" in page.locator("#signed-in").inner_text()
        assert "bob-own" in page.content() and "alice-private" not in page.content()
        assert page.locator("nav a[href='/admin']").count() == 0
        (cookie,) = [c for c in context.cookies() if c["name"] == "trackledger_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "bob" not in cookie["value"]  # signed and encoded, not the bare name

        page.goto(auth_web.url + "/audit?actor=alice")
        assert "alice-private" not in page.content()
        page.goto(auth_web.url + "/audit?actor=bob&verified=1")
        assert page.locator("#audit-query input[name=verified]").is_checked()
        assert "experiment created" in page.content()  # bob's own, verified
        page.goto(auth_web.url + "/experiments/1")
        assert "alice-private" not in page.content()

        # The cookie alone cannot make a write from another origin (or none).
        refused = context.request.post(
            auth_web.url + f"{API}/experiments/create",
            data={"name": "csrf"},
            headers={"Origin": "http://evil"},
        )
        assert refused.status == 403
        assert (
            context.request.post(auth_web.url + f"{API}/experiments/create", data={"name": "x"}).status == 403
        )

        page.click("#signed-in button[type=submit]")
        page.wait_for_url("**/login")
        page.goto(auth_web.url + "/")
        assert "/login" in page.url and "bob-own" not in page.content()
    finally:
        context.close()


def test_admin_creates_a_user_and_grants_on_the_admin_page(browser, auth_web):
    context = browser.new_context()
    page = context.new_page()
    try:
        _sign_in(page, auth_web.url, *ADMIN)
        page.wait_for_selector("#signed-in")
        page.click("nav a[href='/admin']")
        page.wait_for_selector("#users-table")
        page.fill("#create-user input[name=username]", "dave")
        page.fill("#create-user input[name=password]", "dave-password-1")
        page.click("#create-user button[type=submit]")
        page.wait_for_selector("tr[data-user=dave]")
        page.select_option("#grant select[name=username]", "dave")
        page.fill("#grant input[name=resource_id]", "1")
        page.select_option("#grant select[name=permission]", "EDIT")
        page.click("#grant button[type=submit]")
        page.wait_for_selector("tr[data-user=dave] form.api-form")
        assert "EDIT on experiment 1 (alice-private)" in page.locator("tr[data-user=dave]").inner_text()
    finally:
        context.close()
    with httpx.Client(base_url=auth_web.url, auth=ADMIN, timeout=60) as admin:
        granted = admin.get("/api/ledger/events", params={"type": "permission_granted", "limit": 1000}).json()
        assert ("admin", True, "dave", "EDIT") in {
            (e["actor"], e["actor_verified"], e["username"], e["permission"]) for e in granted["events"]
        }
