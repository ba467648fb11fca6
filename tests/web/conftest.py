"""Browser tests: Debian's chromium driven by Playwright against a real server subprocess.

Playwright cannot download its own browsers here, so the system chromium is used; when it is
missing (a fresh CI machine) it is installed with apt-get, and the session fails clearly if
that is impossible.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.api.conftest import ServerProcess
from tests.web.sweep import Sweep, log_sweep

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parents[1] / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Charts draw once plotly.js (4.8 MB) has loaded after the first paint: seconds on a busy machine.
expect.set_options(timeout=20_000)
# The mlflow client prints a "View run" line per finished run: 200 of them for a sweep.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _install_chromium() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get): "
            "install Debian's chromium package to run the browser tests"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            output = f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            pytest.fail(f"{' '.join(cmd)} failed with exit code {done.returncode}:\n{output}")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        _install_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("web")
    server = ServerProcess(str(workdir / "data"), workdir).start()
    yield server
    if server.proc.poll() is None:
        assert server.stop() == 0, server.read_log()


@pytest.fixture(scope="module")
def two_runs(web_server):
    """Alice's and Bob's runs (C=0.1 and C=0.5, each with an sklearn model)."""
    return run_logging_script("log_two_runs.py", web_server.url)


def run_logging_script(name: str, url: str) -> dict:
    """Run tests/web/<name> against the server at ``url``: a real mlflow client in its own process,
    as a training script would log; returns the JSON its last line prints."""
    done = subprocess.run(
        [sys.executable, str(HERE / name), url],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sweep_size() -> int:
    """How many runs ``sweep`` logs; a module overrides this fixture for a smaller sweep."""
    return 200


@pytest.fixture(scope="module")
def sweep(web_server, sweep_size) -> Sweep:
    """A sweep of ``sweep_size`` runs (300 steps of loss and val_acc, failed runs, nested children
    sharing names across parents) and Alice's and Bob's single-accuracy runs: see tests/web/sweep.py."""
    return log_sweep(web_server.url, sweep_size)


@pytest.fixture
def page(browser, web_server):
    context = browser.new_context(
        base_url=web_server.url, viewport={"width": 1360, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory):
    """``screenshot(page, name)`` saves a whole-page <name>.png.

    Into docs/screenshots (the README's pictures) when TRACKLEDGER_UPDATE_SCREENSHOTS=1, else into a
    temporary folder, so that a test run leaves the work tree clean.
    """
    update = os.environ.get("TRACKLEDGER_UPDATE_SCREENSHOTS") == "1"
    folder = SCREENSHOTS if update else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> None:
        height = page.evaluate("(m => m.offsetTop + m.offsetHeight)(document.querySelector('main'))")
        width = page.viewport_size["width"]
        page.screenshot(
            path=str(folder / f"{name}.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": width, "height": height},
        )

    return save
