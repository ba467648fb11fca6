"""Charts in Chromium: the chart view over a 200-run sweep, the line charts' controls, unique names
for children sharing a name, and names that look like HTML shown as text."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

RUN_URL = re.compile(r"/runs/([0-9a-f]{32})$")


def open_chart_view(page, experiment_id: str) -> None:
    page.goto(f"/experiments/{experiment_id}/charts")
    expect(page.locator("#chart-view[data-ready=true]")).to_be_attached(timeout=60_000)


def plot(page, selector: str) -> dict:
    """The data and layout plotly drew in ``selector`` (run ids, values and axis types)."""
    return page.evaluate(
        """(selector) => { const gd = document.querySelector(selector);
             return { data: gd.data.map((t) => ({ x: t.x, y: t.y, name: t.name, meta: t.meta,
                                                    customdata: t.customdata, mode: t.mode,
                                                    dimensions: t.dimensions && t.dimensions.length })),
                      layout: { x: gd.layout.xaxis && gd.layout.xaxis.type,
                                y: gd.layout.yaxis && gd.layout.yaxis.type,
                                legend: gd.layout.showlegend } }; }""",
        selector,
    )


def click_first_point(page, selector: str) -> None:
    """Plotly takes clicks on the plot area and finds the point under the mouse: move, then click."""
    point = page.locator(f"{selector} .scatterlayer .point").first
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def test_the_chart_view_draws_all_200_runs_and_a_point_opens_its_run(page, sweep, screenshot):
    open_chart_view(page, sweep.experiment_id)
    expect(page.locator("#chart-limits")).to_contain_text("Showing all 200 runs")
    expect(page.locator("#chart-limits")).to_contain_text("sampled to at most 200 points per run")
    ids = {run.run_id for run in sweep.runs}

    scatter = plot(page, "#scatter")["data"][0]
    assert set(scatter["customdata"]) == ids
    parallel = plot(page, "#parallel")["data"][0]
    assert parallel["dimensions"] == 7  # five params, loss and val_acc
    lines = plot(page, "#line-charts figure[data-key=loss] .chart-canvas")
    assert {trace["meta"] for trace in lines["data"]} == ids
    assert all(len(trace["x"]) <= 200 for trace in lines["data"])  # 300 steps, sampled
    assert all(trace["mode"] == "lines" for trace in lines["data"])  # no markers on long lines
    assert lines["layout"]["legend"] is False  # 200 names: on hover, not beside the plot
    screenshot(page, "charts-200")

    click_first_point(page, "#scatter")
    expect(page).to_have_url(RUN_URL)
    assert RUN_URL.search(page.url)[1] in ids


def test_the_filter_narrows_the_chart_view_as_it_does_the_runs_table(page, sweep):
    page.goto(f"/experiments/{sweep.experiment_id}/charts?filter=params.optimizer+%3D+%27adam%27")
    expect(page.locator("#chart-view[data-ready=true]")).to_be_attached(timeout=60_000)
    adam = {run.run_id for run in sweep.runs if run.params["optimizer"] == "adam"}
    expect(page.locator("#chart-limits")).to_contain_text(f"Showing all {len(adam)} runs matching the filter")
    assert set(plot(page, "#scatter")["data"][0]["customdata"]) == adam


def test_single_values_are_bars_side_by_side_and_a_bar_opens_its_run(page, sweep):
    open_chart_view(page, sweep.team_experiment_id)
    bars = page.locator("#bars")
    expect(bars.locator(".bars .point")).to_have_count(2)
    expect(bars.locator(".xtick")).to_have_text(["alice-model", "bob-model"])  # best first
    expect(bars).to_contain_text("0.912")
    expect(page.locator("#lines-panel")).to_be_hidden()  # nothing was logged as a series
    bars.scroll_into_view_if_needed()
    box = bars.locator(".bars .point").nth(1).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page).to_have_url(f"/runs/{sweep.team_runs['bob']}")


def test_smoothing_log_scale_and_x_axis_modes_change_the_run_charts(page, sweep, screenshot):
    run = next(run for run in sweep.runs if run.status == "FINISHED" and not run.parent_id)
    page.goto(f"/runs/{run.run_id}")
    canvas = "figure[data-key=loss] .chart-canvas"
    expect(page.locator(f"{canvas} .scatterlayer .trace")).to_have_count(1)
    raw = plot(page, canvas)
    assert raw["data"][0]["x"][:3] == [0, 1, 2] and len(raw["data"][0]["y"]) == 300

    page.locator("#smoothing").fill("0.9")
    expect(page.locator("#smoothing-value")).to_have_text("0.9")
    page.wait_for_function(f"document.querySelector('{canvas}').data[0].y[5] !== {raw['data'][0]['y'][5]}")
    smoothed = plot(page, canvas)["data"][0]["y"]
    assert smoothed[0] == pytest.approx(raw["data"][0]["y"][0])  # debiased: starts at the first value
    assert max(abs(a - b) for a, b in zip(smoothed[1:], smoothed, strict=False)) < max(
        abs(a - b) for a, b in zip(raw["data"][0]["y"][1:], raw["data"][0]["y"], strict=False)
    )

    page.locator("#log-scale").check()
    page.wait_for_function(f"document.querySelector('{canvas}').layout.yaxis.type === 'log'")

    page.select_option("#x-axis", "relative")
    page.wait_for_function(f"document.querySelector('{canvas}').layout.xaxis.title.text.includes('since')")
    relative = plot(page, canvas)["data"][0]["x"]
    assert relative[0] == 0 and 0 < relative[1] < 1  # seconds since the run started
    page.select_option("#x-axis", "wall")
    page.wait_for_function(f"document.querySelector('{canvas}').layout.xaxis.type === 'date'")
    screenshot(page, "run-charts")


def test_children_sharing_a_name_are_told_apart_by_their_parents(page, sweep, screenshot):
    folds = sweep.by_name("fold-0")[:2] + sweep.by_name("fold-1")[:2]
    others = [run for run in sweep.runs if not run.parent_id and run.name.count("-") == 2][:6]
    chosen = folds + others
    page.goto("/compare?" + "&".join(f"run={run.run_id}" for run in chosen))
    parents = {run.run_id: run.name for run in sweep.parents}
    expected = [f"{parents[fold.parent_id]} / {fold.name}" for fold in folds]
    legend = page.locator("figure[data-key=loss] .legend")
    for name in expected:
        expect(legend).to_contain_text(name)
        expect(page.locator("#compared-runs thead")).to_contain_text(name)
    lines = plot(page, "figure[data-key=loss] .chart-canvas")
    assert lines["layout"]["legend"] is True and len(lines["data"]) == 10
    assert len({trace["name"] for trace in lines["data"]}) == 10
    screenshot(page, "compare")


@pytest.fixture(scope="module")
def ten_runs(web_server):
    from tests.web.sweep import log_sweep

    return log_sweep(web_server.url, 10, name="Ten runs", seed=3)


def test_the_chart_view_at_10_runs(page, ten_runs, screenshot):
    open_chart_view(page, ten_runs.experiment_id)
    expect(page.locator("#chart-limits")).to_contain_text("Showing all 10 runs")
    lines = plot(page, "#line-charts figure[data-key=val_acc] .chart-canvas")
    assert len(lines["data"]) == 10 and lines["layout"]["legend"] is True
    screenshot(page, "charts-10")


def oklab(css_hex: str) -> tuple[float, float, float]:
    """A ``#rrggbb`` colour in OKLab (Björn Ottosson's perceptual space): distances between colours
    there follow how different people see them."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(css_hex[i : i + 2], 16)) for i in (1, 3, 5))
    lms = (
        0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b,
        0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b,
        0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b,
    )
    l_, m_, s_ = (math.copysign(abs(v) ** (1 / 3), v) for v in lms)
    return (
        0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_,
        1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_,
        0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_,
    )


def closest_pair(colours: list[str]) -> tuple[float, str, str]:
    return min((math.dist(oklab(a), oklab(b)), a, b) for a, b in itertools.combinations(colours, 2))


# OKLab distances: about 0.02 is the smallest difference one notices side by side; lines crossing
# a chart need several times that. The old palette's two blues were 0.085 apart, its greens 0.063.
TEN_APART = 0.1
TWENTY_APART = 0.045


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_ten_lines_of_a_ten_run_chart_differ_at_a_glance(
    browser, web_server, ten_runs, scheme, screenshot
):
    context = browser.new_context(
        base_url=web_server.url, viewport={"width": 1360, "height": 900}, color_scheme=scheme
    )
    try:
        page = context.new_page()
        open_chart_view(page, ten_runs.experiment_id)
        canvas = "#line-charts figure[data-key=val_acc] .chart-canvas"
        lines = page.evaluate(f"document.querySelector('{canvas}').data.map((t) => t.line.color)")
        palette = page.evaluate(
            "Array.from({length: 20}, (_, i) => getComputedStyle(document.documentElement)"
            ".getPropertyValue(`--series-${i + 1}`).trim())"
        )
        background = page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--chart-bg')"
        )
        assert lines == palette[:10]  # the runs take the stylesheet's colours, in order
        assert len(set(palette)) == 20 and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in palette)
        distance, a, b = closest_pair(lines)
        assert distance > TEN_APART, (scheme, a, b, distance)
        distance, a, b = closest_pair(palette)
        assert distance > TWENTY_APART, (scheme, a, b, distance)
        # Every line stands out from the chart's background.
        assert min(math.dist(oklab(c), oklab(background.strip())) for c in palette) > 0.25
        if scheme == "dark":  # the light one is charts-10
            screenshot(page, "charts-10-dark")
    finally:
        context.close()


HOSTILE = ["<script>window.__pwned = 1</script>", '<img src=x onerror="window.__pwned = 2">']


def test_names_that_look_like_html_are_shown_as_text(page, web_server):
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=web_server.url)
    experiment_id = client.create_experiment('<img src=x onerror="window.__pwned = 3">')
    run_ids = []
    for i, name in enumerate(HOSTILE):
        run = client.create_run(experiment_id, run_name=name)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", 0.5 + i / 10, 0, 0)]
            + [Metric("loss", 1 / (s + 1), s, s) for s in range(40)],
            params=[Param("model", name)],
        )
        run_ids.append(run.info.run_id)

    open_chart_view(page, experiment_id)
    expect(page.locator("#bars .xtick").first).to_contain_text("<")
    expect(page.locator("#bars")).to_contain_text(HOSTILE[0])
    expect(page.locator("#parallel")).to_contain_text(HOSTILE[1])  # the param's values on its axis
    page.goto("/compare?" + "&".join(f"run={run_id}" for run_id in run_ids))
    expect(page.locator("figure[data-key=loss] .legend")).to_contain_text(HOSTILE[0])
    page.goto(f"/runs/{run_ids[1]}")
    expect(page.locator("figure[data-key=loss] .scatterlayer .trace")).to_have_count(1)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_runs_with_nothing_logged_leave_the_panels_hidden(page, web_server):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=web_server.url)
    experiment_id = client.create_experiment("nothing logged")
    client.create_run(experiment_id, run_name="bare")
    open_chart_view(page, experiment_id)  # the page fixture fails the test on a JavaScript error
    expect(page.locator("#chart-limits")).to_contain_text("Showing all 1 run")
    for panel in ("#parallel-panel", "#scatter-panel", "#bars-panel", "#lines-panel"):
        expect(page.locator(panel)).to_be_hidden()
