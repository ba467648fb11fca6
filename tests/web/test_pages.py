"""The web page in a real browser: Alice's and Bob's runs, from the experiments list to the SQL page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def open_experiment(page, two_runs):
    page.goto("/")
    page.get_by_role("link", name="Churn Prediction").click()
    expect(page.locator("#runs tbody tr")).to_have_count(2)


def test_experiments_list_shows_the_experiment_with_its_run_count(page, two_runs, screenshot):
    page.goto("/")
    row = page.locator("#experiments tbody tr", has_text="Churn Prediction")
    expect(row).to_have_count(1)
    expect(row.locator("td.num")).to_have_text("2")
    screenshot(page, "experiments")


def test_runs_table_shows_both_runs_and_filters_to_one(page, two_runs, screenshot):
    open_experiment(page, two_runs)
    table = page.locator("#runs")
    expect(table).to_contain_text("alice-baseline")
    expect(table).to_contain_text("bob-regularised")
    expect(table.locator("thead")).to_contain_text("accuracy")  # a latest-metric column
    screenshot(page, "experiment")

    page.fill("#filter", "params.C = '0.1'")
    page.press("#filter", "Enter")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(table).to_contain_text("alice-baseline")
    expect(table).not_to_contain_text("bob-regularised")


def test_sorting_by_a_param_column_orders_the_rows(page, two_runs):
    open_experiment(page, two_runs)
    page.locator("#runs thead a", has_text="C").first.click()  # ascending first
    expect(page.locator("#runs tbody tr").first).to_contain_text("alice-baseline")
    page.locator("#runs thead a", has_text="C").first.click()  # then descending
    expect(page.locator("#runs tbody tr").first).to_contain_text("bob-regularised")


def test_a_bad_filter_shows_its_error_next_to_the_box(page, two_runs, screenshot):
    open_experiment(page, two_runs)
    page.fill("#filter", "params.C = 0.1")  # params are strings: MLflow wants '0.1'
    page.press("#filter", "Enter")
    error = page.locator("#filter-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Invalid")
    expect(error).to_contain_text("quoted string")
    expect(page.locator("#filter")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#filter")).to_have_value("params.C = 0.1")  # kept, to be fixed
    expect(page.locator("#runs")).to_have_count(0)
    screenshot(page, "filter-error")


def test_compare_highlights_the_differing_param_and_charts_one_line_per_run(page, two_runs, screenshot):
    open_experiment(page, two_runs)
    compare = page.locator("#compare-button")
    expect(compare).to_be_disabled()
    for box in page.locator('#runs input[name="run"]').all():
        box.check()
    expect(compare).to_be_enabled()
    compare.click()

    expect(page).to_have_url(re.compile(r"/compare\?run=[0-9a-f]{32}&run=[0-9a-f]{32}$"))
    c_row = page.locator("#compare-params tbody tr:has(th:text-is('C'))")
    expect(c_row).to_have_class("differs")
    expect(c_row).to_contain_text("0.1")
    expect(c_row).to_contain_text("0.5")
    solver_row = page.locator("#compare-params tbody tr:has(th:text-is('solver'))")
    expect(solver_row).to_have_class("same")

    chart = page.locator("figure.chart", has_text="accuracy")
    expect(chart.locator(".scatterlayer .trace")).to_have_count(2)  # plotly drew one line per run
    screenshot(page, "compare")


def test_run_page_downloads_the_model_file_byte_for_byte(page, two_runs, web_server):
    alice = two_runs["runs"][0]
    page.goto(f"/runs/{alice['run_id']}")
    expect(page.locator("#params")).to_contain_text("0.1")
    expect(page.locator("#metrics")).to_contain_text("accuracy")
    expect(page.locator("figure.chart .scatterlayer .trace").first).to_be_attached()

    link = page.locator("#artifacts a[data-path='MLmodel']")
    expect(link).to_have_count(1)
    model_file = page.locator("#artifacts a[data-path$='.skops'], #artifacts a[data-path$='.pkl']").first
    with page.expect_download() as download_info:
        model_file.click()
    downloaded = Path(download_info.value.path()).read_bytes()
    relative = model_file.get_attribute("href").split("/mlflow-artifacts/artifacts/", 1)[1]
    stored = Path(web_server.store, "artifacts", relative).read_bytes()
    assert downloaded == stored and len(stored) > 0
    assert alice["model_id"] in relative  # MLflow 3 keeps the model's files under the logged model


def test_run_audit_history_lists_every_event_about_the_run(page, two_runs):
    alice = two_runs["runs"][0]
    page.goto(f"/runs/{alice['run_id']}#history")
    history = page.locator("#history #events")
    expect(history).to_contain_text("run created")
    expect(history).to_contain_text("batch logged")
    expect(history).to_contain_text("run updated")
    expect(history).to_contain_text("FINISHED")
    expect(history).to_contain_text("artifact written")
    expect(history).not_to_contain_text(two_runs["runs"][1]["model_id"])  # nothing about Bob's run
    expect(history.locator("tbody tr").first).to_contain_text("run updated")  # newest first


def test_audit_page_filters_the_ledger_by_actor_and_event_type(page, two_runs):
    page.goto("/audit")
    expect(page.locator("#events")).to_contain_text("bob")
    page.fill("input[name=actor]", "alice")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#events tbody tr").first).to_contain_text("alice")
    expect(page.locator("#events")).not_to_contain_text("bob")
    page.fill("input[name=actor]", "")
    page.select_option("select[name=type]", "run_created")
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#events")).not_to_contain_text("batch logged")


def test_sql_page_runs_a_query_and_shows_the_caps(page, two_runs, screenshot):
    page.goto("/sql")
    expect(page.locator("#sql-caps")).to_contain_text("10,000 rows")
    page.fill("#sql-query", "SELECT run_name, user_id FROM runs ORDER BY run_name")
    page.get_by_role("button", name="Run query").click()
    table = page.locator("#sql-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("alice-baseline")
    expect(page.locator("#sql-status")).to_contain_text("2 rows")
    screenshot(page, "sql")


def test_sql_page_shows_a_refused_query_as_an_error(page, two_runs):
    page.goto("/sql")
    page.fill("#sql-query", "SELECT * FROM read_csv('/etc/passwd')")
    page.get_by_role("button", name="Run query").click()
    expect(page.locator("#sql-status.error")).to_be_visible()
    expect(page.locator("#sql-table")).to_have_count(0)


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("/runs/0123456789abcdef0123456789abcdef", "Run not found"),
        ("/experiments/987654", "Experiment not found"),
        ("/no/such/page", "Page not found"),
    ],
)
def test_not_found_pages_are_helpful_pages(page, path, title):
    response = page.goto(path)
    assert response.status == 404
    expect(page.locator("h1")).to_have_text(title)
    expect(page.get_by_role("link", name="Back to experiments")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Traceback")


def test_a_page_number_past_the_end_shows_an_empty_page(page, two_runs):
    response = page.goto(f"/experiments/{two_runs['experiment_id']}?page=99999999999999999999")
    assert response.status == 200
    expect(page.locator("body")).not_to_contain_text("could not be built")


def test_plotly_is_served_by_the_server_itself(page, web_server):
    response = page.request.get("/vendor/plotly.min.js")
    assert response.status == 200
    assert b"plotly" in response.body()[:2000].lower()
