"""The page's look that a stylesheet decides: a dark theme following the system setting, the
favicon, sort arrows on the label's line, artifact icons that are not checkboxes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from trackledger.api.web.assets import STATIC_DIR

STYLE = STATIC_DIR / "style.css"
COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|rgba?\(")


def test_every_colour_of_the_stylesheet_is_a_custom_property():
    """Colours outside ``--name: value`` declarations would stay light in the dark theme."""
    outside = [
        line.strip()
        for line in STYLE.read_text().splitlines()
        if COLOUR.search(line) and not line.strip().startswith("--")
    ]
    assert outside == []


def luminance(css_colour: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.fixture
def dark_page(browser, web_server):
    context = browser.new_context(
        base_url=web_server.url, viewport={"width": 1360, "height": 900}, color_scheme="dark"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def computed(page, selector: str, prop: str) -> str:
    return page.locator(selector).first.evaluate("(el, p) => getComputedStyle(el)[p]", prop)


@pytest.mark.e2e
@pytest.mark.browser
def test_dark_theme_follows_the_system_setting_on_every_page(dark_page, page, two_runs, screenshot):
    alice = two_runs["runs"][0]
    pages = ["/", f"/experiments/{two_runs['experiment_id']}", f"/runs/{alice['run_id']}", "/audit"]
    for path in pages:
        dark_page.goto(path)
        for selector in ("body", ".card"):
            background = computed(dark_page, selector, "backgroundColor")
            assert luminance(background) < 0.2, (path, selector, background)
        assert luminance(computed(dark_page, "body", "color")) > 0.7, path
    dark_page.goto(pages[1])
    screenshot(dark_page, "experiment-dark")

    page.goto(pages[1])  # the light theme is unchanged for a light system
    assert luminance(computed(page, "body", "backgroundColor")) > 0.9


@pytest.mark.e2e
@pytest.mark.browser
def test_favicon_is_linked_and_served(page, web_server):
    page.goto("/")
    icon = page.locator("link[rel=icon]")
    response = page.request.get(icon.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.body()
    legacy = page.request.get("/favicon.ico")
    assert legacy.status == 200 and b"<svg" in legacy.body()


@pytest.mark.e2e
@pytest.mark.browser
def test_the_sort_arrow_stays_on_the_line_of_its_label(page, two_runs):
    page.goto(f"/experiments/{two_runs['experiment_id']}?sort=p:solver&dir=asc")
    header = page.locator("#runs thead th.sorted")
    label_box = header.locator(".sort-label").bounding_box()
    arrow_box = header.locator(".arrow").bounding_box()
    expect(header.locator(".arrow")).to_have_text("▲")
    assert abs(arrow_box["y"] - label_box["y"]) < 4  # the same line, not wrapped under "param"


@pytest.mark.e2e
@pytest.mark.browser
def test_artifact_icons_are_shapes_not_boxes(page, two_runs):
    page.goto(f"/runs/{two_runs['runs'][0]['run_id']}")
    link = page.locator("#artifacts a[data-path='MLmodel']")
    style = link.evaluate(
        "a => { const s = getComputedStyle(a, '::before');"
        " return {border: s.borderTopWidth, mask: s.maskImage || s.webkitMaskImage}; }"
    )
    assert style["border"] == "0px" and "svg" in style["mask"]
