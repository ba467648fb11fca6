"""Editing a run from its page, in Chromium: rename, set and delete tags, delete and restore, the
description (``mlflow.note.content``, rendered as Markdown with nothing in it running). Every edit
goes through the MLflow REST routes and shows in the run's audit history; under --auth a reader's
edit is refused by the server, shown where they acted, and appends nothing."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.conftest import API, ledger_events
from tests.auth.conftest import ADMIN, ALICE, AUTH_API, BOB, start_auth_server
from tests.web.test_sign_in import _sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def run_id(web_server):
    with httpx.Client(base_url=web_server.url, timeout=60) as http:
        exp = http.post(f"{API}/experiments/create", json={"name": "edits"}).json()["experiment_id"]
        body = {"experiment_id": exp, "run_name": "first-name", "tags": [{"key": "team", "value": "growth"}]}
        return http.post(f"{API}/runs/create", json=body).json()["run"]["info"]["run_id"]


def _history(page):
    return page.locator("#history #events")


def test_rename_from_the_run_page(page, run_id):
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#rename-form")).to_be_hidden()
    page.click("#rename-button")
    page.fill("#rename-form input[name=run_name]", "renamed <b>run</b>")
    page.click("#rename-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("renamed <b>run</b>")  # escaped: shown as typed
    expect(page.locator("h1 b")).to_have_count(0)
    expect(_history(page).locator("tbody tr").first).to_contain_text("run updated")
    expect(_history(page).locator("tbody tr").first).to_contain_text("name=renamed <b>run</b>")


def test_a_refused_edit_is_shown_inline_and_changes_nothing(page, run_id, web_server):
    with httpx.Client(base_url=web_server.url) as http:
        before = len(ledger_events(http, run_id=run_id))
    page.goto(f"/runs/{run_id}")
    page.fill("#set-tag-form input[name=key]", "../escape")
    page.fill("#set-tag-form input[name=value]", "x")
    page.click("#set-tag-form button[type=submit]")
    status = page.locator("#set-tag-form .edit-status")
    expect(status).to_be_visible()
    expect(status).to_contain_text("Names may be treated as files")  # the server's own message
    expect(status).to_contain_text("(400)")
    expect(
        page.locator("#set-tag-form button[type=submit]")
    ).to_be_enabled()  # may be corrected and sent again
    with httpx.Client(base_url=web_server.url) as http:
        assert len(ledger_events(http, run_id=run_id)) == before


def test_set_and_delete_a_tag_from_the_run_page(page, run_id):
    page.goto(f"/runs/{run_id}")
    page.fill("#set-tag-form input[name=key]", "stage")
    page.fill("#set-tag-form input[name=value]", "<img src=x onerror=alert(1)>")
    page.click("#set-tag-form button[type=submit]")
    row = page.locator("#tags tr[data-key='stage']")
    expect(row).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator("#tags img")).to_have_count(0)
    expect(_history(page).locator("tbody tr").first).to_contain_text(
        "tags stage=<img src=x onerror=alert(1)>"
    )

    row.locator("button[aria-label='Delete tag stage']").click()
    expect(page.locator("#tags tr[data-key='stage']")).to_have_count(0)
    expect(page.locator("#tags tr[data-key='team']")).to_have_count(1)
    expect(_history(page).locator("tbody tr").first).to_contain_text("run tag deleted")


def test_delete_and_restore_from_the_run_page(page, run_id):
    page.goto(f"/runs/{run_id}")
    page.click("#delete-form button[type=submit]")
    expect(page.locator("h1 .badge-deleted")).to_have_text("deleted")
    expect(_history(page).locator("tbody tr").first).to_contain_text("run deleted")
    page.click("#restore-form button[type=submit]")
    expect(page.locator("h1 .badge-deleted")).to_have_count(0)
    expect(page.locator("#delete-form")).to_have_count(1)
    expect(_history(page).locator("tbody tr").first).to_contain_text("run restored")


HOSTILE_NOTE = """# Results

**Better** than the baseline; see [the docs](https://mlflow.org/docs) and [run](/runs/x).

<script>window.pwned = "script"</script>
<img src=x onerror="window.pwned = 'img'">
[click me](javascript:window.pwned='link') [hidden](JaVaScRiPt&colon;window.pwned='entity')
"""


def test_the_description_renders_markdown_and_nothing_in_it_runs(page, run_id):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/runs/{run_id}")
    page.click("#edit-note-button")
    page.fill("#note-form textarea", HOSTILE_NOTE)
    page.click("#note-form button[type=submit]")
    note = page.locator("#note-body")
    expect(note.locator("h1")).to_have_text("Results")
    expect(note.locator("strong")).to_have_text("Better")
    expect(note.locator("a[href='https://mlflow.org/docs']")).to_have_attribute(
        "rel", "noopener noreferrer nofollow"
    )
    expect(note).to_contain_text('<script>window.pwned = "script"</script>')  # shown as text
    expect(note).to_contain_text("<img src=x onerror=")
    assert note.locator("script, img, iframe").count() == 0
    hrefs = note.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://mlflow.org/docs", "/runs/x"]
    for text in ("click me", "hidden"):
        link = note.get_by_text(text, exact=False)
        expect(link).to_be_visible()
        assert link.evaluate("e => e.tagName") != "A"
    note.get_by_text("click me", exact=False).click()  # the text where the link would be
    assert page.evaluate("window.pwned") is None and not dialogs
    expect(page.locator("#tags")).not_to_contain_text("mlflow.note.content")  # shown as the description
    expect(_history(page).locator("tbody tr").first).to_contain_text("tags mlflow.note.content=# Results")

    page.click("#edit-note-button")
    expect(page.locator("#note-form textarea")).to_have_value(HOSTILE_NOTE)
    page.fill("#note-form textarea", "")
    page.click("#note-form button[type=submit]")
    expect(page.locator("#note-body")).to_contain_text("No description.")
    expect(_history(page).locator("tbody tr").first).to_contain_text("run tag deleted")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """alice's runs: in an experiment bob may only read (the default permission, READ), one he may
    not read, one he may edit."""
    server = start_auth_server(tmp_path_factory.mktemp("auth-edits"), (ALICE, BOB))
    runs = {}
    with httpx.Client(base_url=server.url, auth=("alice", "alice-password-1"), timeout=60) as alice:
        for name in ("alice-shared", "alice-hidden", "alice-editable"):
            exp = alice.post(f"{API}/experiments/create", json={"name": name}).json()["experiment_id"]
            body = {
                "experiment_id": exp,
                "run_name": "alice-run",
                "tags": [{"key": "team", "value": "growth"}],
            }
            run = alice.post(f"{API}/runs/create", json=body).json()["run"]["info"]["run_id"]
            for file, data in (
                ("notes.txt", b"alice's notes"),
                ("plot.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            ):
                put = alice.put(
                    f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/{file}", content=data
                )
                put.raise_for_status()
            runs[name] = (exp, run)
        for name, permission in (("alice-hidden", "NO_PERMISSIONS"), ("alice-editable", "EDIT")):
            grant = {"username": "bob", "resource_type": "experiment", "resource_id": runs[name][0]}
            alice.post(f"{AUTH_API}/grant", json={**grant, "permission": permission}).raise_for_status()
    yield server, runs
    if server.proc.poll() is None:
        assert server.stop() == 0, server.read_log()


# The run page's edit controls, each with the level the REST guard asks of its route.
EDIT_CONTROLS = (
    "#rename-button",
    "#rename-form",
    "#set-tag-form",
    "#tags form.run-edit",
    "#edit-note-button",
    "#note-form",
)
MANAGE_CONTROLS = ("#delete-form",)


def _signed_in_page(browser, server, user):
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    _sign_in(page, server.url, *user)
    page.wait_for_selector("#signed-in")
    return context, page


def test_a_reader_sees_no_edit_controls_and_the_server_still_refuses_edits(browser, auth_server):
    server, runs = auth_server
    run_id = runs["alice-shared"][1]
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as admin:
        before = len(ledger_events(admin))
    context, page = _signed_in_page(browser, server, BOB)
    try:
        page.goto(f"/runs/{run_id}")
        expect(page.locator("h1")).to_contain_text("alice-run")
        expect(page.locator("#tags")).to_contain_text("growth")  # what he may read is all there
        for control in (*EDIT_CONTROLS, *MANAGE_CONTROLS, "#run-actions"):
            expect(page.locator(control)).to_have_count(0)
        # He may register the run into a model of his own (READ on the run is what that needs).
        expect(page.locator("#register-model")).to_have_count(1)
        # The routes still refuse him what the page no longer offers.
        for route, body in (
            ("runs/update", {"run_name": "bob-was-here"}),
            ("runs/set-tag", {"key": "owner", "value": "bob"}),
            ("runs/delete", {}),
        ):
            refused = page.evaluate(
                """async ([route, body]) => {
                     try { await postJson("/ajax-api/2.0/mlflow/" + route, body); return null; }
                     catch (err) { return [err.status, err.message]; } }""",
                [route, {"run_id": run_id, **body}],
            )
            assert refused is not None and refused[0] == 403 and "Permission denied" in refused[1], route
    finally:
        context.close()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as admin:
        assert len(ledger_events(admin)) == before


def test_an_editor_sees_the_controls_of_edit_and_the_owner_those_of_manage(browser, auth_server, screenshot):
    server, runs = auth_server
    run_id = runs["alice-editable"][1]
    context, page = _signed_in_page(browser, server, BOB)  # EDIT on the experiment
    try:
        page.goto(f"/runs/{run_id}")
        for control in EDIT_CONTROLS:
            expect(page.locator(control)).not_to_have_count(0)
        for control in MANAGE_CONTROLS:  # deleting a run needs MANAGE
            expect(page.locator(control)).to_have_count(0)
        page.click("#rename-button")
        page.fill("#rename-form input[name=run_name]", "renamed-by-bob")
        with page.expect_navigation():
            page.click("#rename-form button[type=submit]")
        expect(page.locator("h1")).to_contain_text("renamed-by-bob")
        page.goto(f"/runs/{runs['alice-shared'][1]}")
        page.mouse.move(0, 0)
        screenshot(page, "run-reader")
    finally:
        context.close()
    context, page = _signed_in_page(browser, server, ALICE)  # MANAGE: she created the experiment
    try:
        page.goto(f"/runs/{run_id}")
        for control in (*EDIT_CONTROLS, *MANAGE_CONTROLS):
            expect(page.locator(control)).not_to_have_count(0)
    finally:
        context.close()


def test_a_reader_previews_what_they_may_read_and_nothing_of_a_hidden_run(browser, auth_server):
    server, runs = auth_server
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    try:
        _sign_in(page, server.url, "bob", "bob-password-1")
        page.wait_for_selector("#signed-in")
        shared_exp, shared_run = runs["alice-shared"]
        page.goto(f"/runs/{shared_run}")
        page.locator("#artifacts li.file:has(a[data-path='notes.txt']) button.preview-button").click()
        expect(page.locator("#artifact-preview pre.preview-text")).to_have_text("alice's notes")

        hidden_exp, hidden_run = runs["alice-hidden"]
        for route in ("artifacts", "images"):
            for file in ("notes.txt", "plot.svg"):
                answer = context.request.get(f"/previews/{route}/{hidden_exp}/{hidden_run}/artifacts/{file}")
                assert answer.status == 403, (route, file, answer.text())
                assert answer.json()["error_code"] == "PERMISSION_DENIED"
                assert "alice's notes" not in answer.text()
        # A hidden run's file named under a readable experiment is refused too (the run is checked).
        mixed = context.request.get(f"/previews/artifacts/{shared_exp}/{hidden_run}/artifacts/notes.txt")
        assert mixed.status == 403
    finally:
        context.close()
