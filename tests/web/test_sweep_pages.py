"""Runs as people see them, over the shared 200-run sweep in Chromium: nested runs as a tree that
folds, a parent's page listing its children, the column chooser's search and tag columns, audit
entries with names, dates and links, and user data with markup shown as text everywhere."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.conftest import run_logging_script
from tests.web.log_hostile_run import MARKUP, SCRIPT
from tests.web.sweep import log_sweep

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@pytest.fixture(scope="module")
def small_sweep(web_server, sweep):
    return log_sweep(web_server.url, 10, name="Small sweep")


@pytest.fixture(scope="module")
def hostile(web_server):
    return run_logging_script("log_hostile_run.py", web_server.url)


def tree_rows(page) -> list[dict]:
    """The runs table's rows in order: run id, parent id (children only), depth, name, hidden."""
    return page.locator("#runs tbody tr").evaluate_all(
        """rows => rows.map(r => ({run: r.dataset.run, parent: r.dataset.parent || null,
              depth: Number(r.dataset.depth), name: r.querySelector('td.name > a').textContent,
              hidden: r.hidden}))"""
    )


def test_nested_sweep_shows_children_under_their_parent_and_folds(page, sweep, screenshot):
    page.goto(f"/experiments/{sweep.experiment_id}?per=200")
    rows = tree_rows(page)
    assert len(rows) == 200
    parents = sweep.parents
    assert len(parents) == 10
    for parent in parents:
        at = next(i for i, row in enumerate(rows) if row["run"] == parent.run_id)
        under = rows[at + 1 : at + 4]
        assert [row["parent"] for row in under] == [parent.run_id] * 3
        assert sorted(row["name"] for row in under) == ["fold-0", "fold-1", "fold-2"]  # names shared
        assert all(row["depth"] == 1 for row in under)
    assert sum(row["name"] == "fold-0" for row in rows) == 10

    folded = page.locator(f"#runs tr[data-run='{parents[1].run_id}'] .tree-toggle")
    children = page.locator(f"#runs tr[data-parent='{parents[1].run_id}']")
    others = page.locator(f"#runs tr[data-parent='{parents[2].run_id}']")
    expect(folded).to_have_attribute("aria-expanded", "true")
    folded.click()
    expect(folded).to_have_attribute("aria-expanded", "false")
    for i in range(3):
        expect(children.nth(i)).to_be_hidden()
        expect(others.nth(i)).to_be_visible()
    page.reload()  # the fold is remembered for the experiment
    expect(children.first).to_be_hidden()
    page.goto(f"/experiments/{sweep.experiment_id}?per=200&sort=m:val_acc&dir=desc")  # and across sorts
    expect(children.first).to_be_hidden()
    page.locator(f"#runs tr[data-run='{parents[1].run_id}'] .tree-toggle").click()
    expect(children.first).to_be_visible()

    page.goto(f"/experiments/{sweep.experiment_id}")
    screenshot(page, "experiment-200")


def test_pages_and_sorting_keep_children_with_their_parent(page, sweep):
    page.goto(f"/experiments/{sweep.experiment_id}?sort=m:val_acc&dir=desc&per=50")
    expect(page.locator(".pager")).to_contain_text("of 170 top-level runs")  # 200 runs, 30 children
    expect(page.locator(".page-head .meta")).to_contain_text("200 runs")
    seen: list[dict] = []
    for number in range(1, 5):
        page.goto(f"/experiments/{sweep.experiment_id}?sort=m:val_acc&dir=desc&per=50&page={number}")
        rows = tree_rows(page)
        assert sum(row["depth"] == 0 for row in rows) == (50 if number < 4 else 20)
        for i, row in enumerate(rows):  # a child comes right after its parent or a sibling
            if row["depth"]:
                assert rows[i - 1]["run"] == row["parent"] or rows[i - 1]["parent"] == row["parent"]
        seen += rows
    assert sorted(row["run"] for row in seen) == sorted(run.run_id for run in sweep.runs)


def test_a_child_whose_parent_is_filtered_out_still_shows_naming_its_parent(page, sweep):
    page.goto(f"/experiments/{sweep.experiment_id}?filter=attributes.run_name+%3D+%27fold-1%27")
    rows = tree_rows(page)
    assert len(rows) == 10 and all(row["depth"] == 0 for row in rows)
    first = page.locator("#runs tbody tr").first
    expect(first.locator(".outside-parent")).to_contain_text("child of search-")
    first.locator(".outside-parent a").click()
    expect(page.locator("h1")).to_contain_text("search-")


def test_parent_page_lists_its_children_and_a_child_links_to_its_parent(page, sweep):
    parent = sweep.parents[0]
    page.goto(f"/runs/{parent.run_id}")
    listed = page.locator("#child-runs tbody tr")
    expect(listed).to_have_count(3)
    expect(page.locator("#child-runs thead")).to_contain_text("loss")
    expect(page.locator("#child-runs thead")).to_contain_text("val_acc")
    expect(listed.first).to_contain_text("fold-0")  # oldest first
    expect(listed.first).to_contain_text("finished")
    expect(listed.first.locator("td.num").last).to_have_text(re.compile(r"^0\.\d+$"))
    listed.nth(1).locator("a").click()
    expect(page.locator("h1")).to_contain_text("fold-1")
    expect(page.locator("#parent-link")).to_have_text(parent.name)
    page.locator("#parent-link").click()
    expect(page).to_have_url(re.compile(f"/runs/{parent.run_id}$"))


def test_column_chooser_search_finds_a_tag_column_that_survives_paging_and_sorting(page, sweep):
    page.goto(f"/experiments/{sweep.experiment_id}?per=50")
    page.click("#column-chooser summary")
    page.fill("#chooser-search", "swe")
    sweep_tag = page.locator("#column-chooser label", has_text="sweep")
    expect(sweep_tag).to_be_visible()
    expect(page.locator("#column-chooser label", has_text="val_acc")).to_be_hidden()
    expect(page.locator("#column-chooser label", has_text="optimizer")).to_be_hidden()
    page.fill("#chooser-search", "no such column")
    expect(page.locator("#column-chooser .chooser-none")).to_be_visible()
    page.fill("#chooser-search", "swe")
    sweep_tag.locator("input").check()
    page.locator("#column-chooser button[type=submit]").click()

    header = page.locator("#runs thead th.key", has_text="sweep")
    expect(header).to_contain_text("tag")
    column = page.locator("#runs thead th").evaluate_all(
        "ths => ths.findIndex(th => th.textContent.includes('tag'))"
    )
    cells = page.locator(f"#runs tbody tr td:nth-child({column + 1})")
    expect(cells.first).to_have_text("Sweep")
    page.locator(".pager a[rel=next]").click()
    expect(header).to_be_visible()
    expect(cells.first).to_have_text("Sweep")
    header.locator("a").click()  # sort by the tag: the column stays
    expect(header).to_have_class(re.compile("sorted"))
    assert "t=sweep" in page.url


def test_audit_entries_show_dates_and_names_linked_to_their_pages(page, sweep, small_sweep, screenshot):
    page.goto(f"/audit?experiment={sweep.experiment_id}&type=run_updated")
    row = page.locator("#events tbody tr").first
    expect(row.locator("td").first).to_have_text(DATE_TIME)
    expect(row).to_contain_text("end_time=2025-11-24 ")  # the sweep's fixed clock, as a date
    expect(row).to_contain_text(" UTC")
    expect(page.locator("#events thead")).to_contain_text("(UTC)")
    run_link = row.locator("td.entity a[href^='/runs/']")
    name = run_link.inner_text()
    assert name in {run.name for run in sweep.runs}
    expect(row.locator("td.entity a[href^='/experiments/']")).to_have_text(sweep.experiment_name)
    run_link.click()
    expect(page.locator("h1")).to_contain_text(name)
    page.go_back()
    row.locator("td.entity a[href^='/experiments/']").click()
    expect(page.locator("h1")).to_have_text(sweep.experiment_name)

    page.goto(f"/audit?experiment={small_sweep.team_experiment_id}")
    expect(page.locator("#events tbody tr")).to_have_count(7)
    screenshot(page, "audit")
    page.goto(f"/experiments/{small_sweep.experiment_id}")
    expect(page.locator("#runs tbody tr.child")).to_have_count(3)
    screenshot(page, "experiment-10")


def test_markup_in_names_tags_and_datasets_is_shown_as_text(page, hostile):
    experiment = hostile["experiment_id"]
    page.goto(f"/experiments/{experiment}?columns=chosen&m=score&t={MARKUP}&c=datasets&c=models")
    table = page.locator("#runs")
    expect(table.locator("td.name a")).to_have_text("run " + SCRIPT)
    expect(table.locator("thead")).to_contain_text(MARKUP)
    expect(table.locator("tbody")).to_contain_text("value " + SCRIPT)
    expect(table.locator(".chip")).to_contain_text("data " + MARKUP)
    expect(page.locator("h1")).to_contain_text("Hostile " + SCRIPT)
    page.click("#column-chooser summary")
    page.fill("#chooser-search", "onerror")
    expect(page.locator("#column-chooser label", has_text=MARKUP)).to_be_visible()
    assert page.locator("#runs img, #column-chooser img").count() == 0

    page.goto(f"/audit?experiment={experiment}")
    events = page.locator("#events")
    expect(events.locator("td.entity a[href^='/runs/']").first).to_have_text("run " + SCRIPT)
    expect(events.locator("td.entity a[href^='/experiments/']").first).to_have_text("Hostile " + SCRIPT)
    expect(events.locator("tbody tr", has_text="run created").locator("td.wrap")).to_have_text(
        "run " + SCRIPT
    )
    assert events.locator("img, script").count() == 0
    page.goto(f"/runs/{hostile['run_id']}")
    expect(page.locator("#inputs")).to_contain_text("data " + MARKUP)
    assert page.evaluate("window.__pwned") is None
