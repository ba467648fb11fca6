"""The model registry in the web page, in Chromium: Alice's and Bob's runs compared, the better one
registered from its run page, an alias set on the model page, the files downloaded; the Models
page's search; edits in the model's audit history; user values shown as text."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.conftest import API

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def api(web_server):
    with httpx.Client(base_url=web_server.url + API, timeout=60) as client:
        yield client


def create_model(api, name: str, run_id: str | None = None, **fields) -> None:
    api.post("/registered-models/create", json={"name": name, **fields}).raise_for_status()
    if run_id:
        source = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
        api.post("/model-versions/create", json=source).raise_for_status()


def registry_events(web_server) -> list[dict]:
    found = httpx.get(web_server.url + "/api/ledger/events", params={"limit": 10_000}, timeout=60).json()
    return [e for e in found["events"] if e["type"].startswith(("registered_model_", "model_version_"))]


def saved(page, button) -> None:
    """Press a form's button whose change reloads the page, and wait for the new page to load
    (its scripts wired), so that the next action meets a live form."""
    with page.expect_navigation():
        button.click()


def test_the_better_run_is_compared_registered_aliased_and_downloaded(page, two_runs, web_server, screenshot):
    page.goto("/")
    page.get_by_role("link", name="Churn Prediction").click()
    for box in page.locator('#runs input[name="run"]').all():
        box.check()
    page.locator("#compare-button").click()
    accuracy = page.locator("#compare-metrics tbody tr:has(th:text-is('accuracy')) td")
    expect(accuracy).to_have_count(2)  # Alice's and Bob's side by side
    values = [float(text) for text in accuracy.all_inner_texts()]
    better = page.locator("#compared-runs thead th a").nth(values.index(max(values)))
    better_id = better.get_attribute("href").rsplit("/", 1)[1]
    better_run = next(r for r in two_runs["runs"] if r["run_id"] == better_id)
    better.click()
    page.wait_for_url(f"**/runs/{better_id}")  # loaded: the page's scripts have wired its buttons

    page.locator(f"#models button.register-this[data-model-id='{better_run['model_id']}']").click()
    expect(page.locator("#register-model")).to_be_visible()
    expect(page.locator("#register-model select[name=source]")).to_have_value(
        f"models:/{better_run['model_id']}"
    )
    page.fill("#register-model input[name=name]", "churn")
    page.locator("#register-model button[type=submit]").click()
    page.wait_for_url(re.compile(r"/models/churn#version-1$"))
    version = page.locator("#version-1")
    expect(version).to_contain_text(better_id)
    expect(version).to_contain_text(better_run["model_id"])

    version.locator(".set-alias input[name=alias]").fill("champion")
    saved(page, version.locator(".set-alias button"))
    expect(page.locator("#version-1 .version-head .alias")).to_have_text("@champion")
    expect(page.locator("#history")).to_contain_text("churn@champion -> v1")

    model_file = page.locator(
        "#version-1 .version-files a[data-path$='.pkl'], #version-1 .version-files a[data-path$='.skops']"
    ).first
    with page.expect_download() as download_info:
        model_file.click()
    downloaded = Path(download_info.value.path()).read_bytes()
    (stored,) = Path(web_server.store, "artifacts").glob(
        f"*/models/{better_run['model_id']}/artifacts/{model_file.get_attribute('data-path')}"
    )
    assert downloaded == stored.read_bytes() and downloaded
    page.mouse.move(0, 0)  # no hover underline in the picture
    screenshot(page, "model")

    page.goto("/models")
    row = page.locator("#models tr[data-model='churn']")
    expect(row).to_contain_text("@champion")
    expect(row).to_contain_text("v1")
    page.goto(f"/runs/{better_id}")
    expect(page.locator("#registered-as")).to_have_text("registered as churn v1 (champion)")
    page.locator("#registered-as a").click()
    expect(page).to_have_url(re.compile(r"/models/churn#version-1$"))


def test_models_page_filters_pages_and_explains_a_bad_filter(page, api, two_runs, screenshot):
    run_id = two_runs["runs"][0]["run_id"]
    for i in range(30):
        tags = [{"key": "kind", "value": "odd" if i % 2 else "even"}]
        create_model(
            api, f"sweep-{i:02d}", run_id if i < 2 else None, tags=tags, description=f"sweep model {i}"
        )
    page.goto("/models")
    expect(page.locator("#models tr[data-model='sweep-29']")).to_have_count(0)  # on page 2
    screenshot(page, "models")
    page.fill("#model-filter", "name LIKE 'sweep-%'")
    page.press("#model-filter", "Enter")
    rows = page.locator("#models tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("sweep-00")
    page.get_by_role("link", name="Next →").click()
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("sweep-25")
    expect(page.locator("a[rel=next]")).to_have_count(0)
    expect(page.locator("#model-filter")).to_have_value("name LIKE 'sweep-%'")

    page.goto("/models?filter=" + "tags.kind = 'odd' and name LIKE 'sweep-0%'")
    expect(rows).to_have_count(5)  # 01, 03, 05, 07, 09
    expect(page.locator("#models")).not_to_contain_text("sweep-02")

    page.fill("#model-filter", "tags.kind = 1")
    page.press("#model-filter", "Enter")
    error = page.locator("#model-filter-error")
    expect(error).to_contain_text("Expected a quoted string value for tag")
    expect(page.locator("#model-filter")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#models")).to_have_count(0)
    page.goto("/models?filter=" + "name = 'sweep-00' and")
    expect(page.locator("#model-filter-error")).to_be_visible()


def test_stage_tags_and_descriptions_edited_on_the_model_page_are_in_its_history(page, api, two_runs):
    create_model(api, "audited", two_runs["runs"][1]["run_id"])
    page.goto("/models/audited")
    version = page.locator("#version-1")
    version.locator(".transition select").select_option("Staging")
    saved(page, version.locator(".transition button"))
    expect(page.locator("#version-1 .version-head .stage")).to_have_text("Staging")

    page.locator("#version-1 details.edit summary").click()
    page.fill("#version-1 .version-description textarea", "trained on March data")
    saved(page, page.locator("#version-1 .version-description button"))
    expect(page.locator("#version-1 .facts")).to_contain_text("trained on March data")
    page.locator("#version-1 details.edit summary").click()
    page.fill("#version-1 .set-tag input[name=key]", "validated")
    page.fill("#version-1 .set-tag input[name=value]", "yes")
    saved(page, page.locator("#version-1 .set-tag button"))
    expect(page.locator("#version-1 .tag-chip")).to_contain_text("validated")

    page.locator("#model-description details.edit summary").click()
    page.fill("#model-description textarea", "churn classifier")
    saved(page, page.locator("#model-description button"))
    expect(page.locator("#model-description .description-text")).to_have_text("churn classifier")
    page.fill("#model-tags input[name=key]", "owner")
    page.fill("#model-tags input[name=value]", "growth")
    saved(page, page.locator("#model-tags .set-tag button"))
    expect(page.locator("#model-tags table")).to_contain_text("owner")
    saved(page, page.locator("#model-tags button[aria-label='delete tag owner']"))
    expect(page.locator("#model-tags table")).to_have_count(0)

    history = page.locator("#history #events")
    for text in (
        "model version stage changed",
        "audited v1 -> Staging",
        "audited v1: description set",
        "audited v1: tag validated=yes",
        "audited: description set",
        "audited: tag owner=growth",
        "audited: tag owner deleted",
        "model version created",
    ):
        expect(history).to_contain_text(text)
    expect(history.locator("tbody tr").first).to_contain_text("registered model tag deleted")  # newest first


def test_an_alias_moves_to_the_version_it_is_set_on_and_is_deleted_with_its_button(page, api, two_runs):
    run_id = two_runs["runs"][0]["run_id"]
    create_model(api, "moving", run_id)
    second = {"name": "moving", "source": f"runs:/{run_id}/model", "run_id": run_id}
    api.post("/model-versions/create", json=second).raise_for_status()
    page.goto("/models/moving")
    expect(page.locator("article.version")).to_have_count(2)
    expect(page.locator("article.version").first).to_have_id("version-2")  # newest first
    for number in (1, 2):
        page.fill(f"#version-{number} .set-alias input[name=alias]", "champion")
        saved(page, page.locator(f"#version-{number} .set-alias button"))
        expect(page.locator(f"#version-{number} .version-head .alias")).to_have_text("@champion")
    expect(page.locator("#version-1 .version-head .alias")).to_have_count(0)  # moved, not copied
    saved(page, page.locator("#version-2 button[aria-label='delete alias champion']"))
    expect(page.locator("#history tbody tr").first).to_contain_text("registered model alias deleted")
    expect(page.locator(".version-head .alias")).to_have_count(0)
    expect(page.locator("#history")).to_contain_text("moving@champion -> v2")


def test_a_refused_change_shows_the_servers_message_and_appends_nothing(page, api, two_runs, web_server):
    create_model(api, "refusals", two_runs["runs"][0]["run_id"])
    before = len(registry_events(web_server))
    page.goto("/models/refusals")
    page.fill("#version-1 .set-alias input[name=alias]", "latest")
    page.locator("#version-1 .set-alias button").click()
    error = page.locator("#version-1 .set-alias .form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("latest")
    page.goto(f"/runs/{two_runs['runs'][0]['run_id']}")
    page.locator("details.register-model summary").click()
    page.fill("#register-model input[name=name]", "refusals")
    page.select_option("#register-model select[name=source]", "runs")
    page.fill("#register-model input[name=path]", "../../elsewhere")
    page.locator("#register-model button[type=submit]").click()
    expect(page.locator("#register-model .form-error")).to_contain_text("Invalid model version source")
    assert len(registry_events(web_server)) == before


def test_a_version_of_a_run_path_lists_and_downloads_the_files_below_that_path(
    page, api, two_runs, web_server
):
    run_id = two_runs["runs"][1]["run_id"]
    root = api.get("/runs/get", params={"run_id": run_id}).json()["run"]["info"]["artifact_uri"]
    folder = root.removeprefix("mlflow-artifacts:/").strip("/")
    proxy = f"{web_server.url}/api/2.0/mlflow-artifacts/artifacts/{folder}"
    for path, body in (("exported/weights.bin", b"\x00weights\xff"), ("notes.txt", b"not the model")):
        httpx.put(f"{proxy}/{path}", content=body, timeout=60).raise_for_status()
    api.post("/registered-models/create", json={"name": "exported"}).raise_for_status()
    version = {"name": "exported", "source": f"runs:/{run_id}/exported", "run_id": run_id}
    api.post("/model-versions/create", json=version).raise_for_status()
    page.goto("/models/exported")
    links = page.locator("#version-1 .version-files a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("data-path", "weights.bin")
    with page.expect_download() as download_info:
        links.click()
    assert Path(download_info.value.path()).read_bytes() == b"\x00weights\xff"


def test_a_model_that_does_not_exist_is_a_not_found_page(page):
    response = page.goto("/models/no-such-model")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Model not found")


SCRIPT = "<script>window.__pwned = 1</script>"
IMG = "<img src=x onerror='window.__pwned = 1'>"


def test_model_names_tags_and_descriptions_render_as_text(page, api, two_runs):
    run_id = two_runs["runs"][0]["run_id"]
    name = f"x{IMG}"
    tags = [{"key": "note", "value": SCRIPT}]
    create_model(api, name, run_id, description=f"{SCRIPT}{IMG}", tags=tags)
    api.patch(
        "/model-versions/update", json={"name": name, "version": "1", "description": IMG}
    ).raise_for_status()
    api.post(
        "/model-versions/set-tag", json={"name": name, "version": "1", "key": "k", "value": IMG}
    ).raise_for_status()
    api.post(
        "/registered-models/alias", json={"name": name, "alias": "safe", "version": "1"}
    ).raise_for_status()

    page.goto("/models?filter=" + "name LIKE 'x<img%'")
    expect(page.locator("#models td.name")).to_have_text(name)
    expect(page.locator("#models")).to_contain_text(SCRIPT)
    page.locator("#models td.name a").click()
    expect(page.locator("#model-name")).to_have_text(name)
    expect(page.locator("#model-description .description-text")).to_have_text(f"{SCRIPT}{IMG}")
    expect(page.locator("#model-tags")).to_contain_text(SCRIPT)
    expect(page.locator("#version-1 .facts")).to_contain_text(IMG)
    expect(page.locator("#history")).to_contain_text(name)
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#registered-as")).to_contain_text(f"{name} v1 (safe)")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
