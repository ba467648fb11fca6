"""The webhooks page in a real browser: a webhook and its deliveries, one retried after a 500."""

from __future__ import annotations

import time

import httpx
import pytest
from mlflow import MlflowClient
from playwright.sync_api import expect

from tests.api.conftest import ServerProcess
from tests.api.webhook_receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("web-webhooks")
    args = ("--webhook-allow-private", "--webhook-retry-max", "0.5")
    server = ServerProcess(str(workdir / "data"), workdir, args=args).start()
    yield server
    if server.proc.poll() is None:
        assert server.stop() == 0, server.read_log()


def test_the_webhooks_page_shows_each_delivery_with_its_attempts(page, web_server, screenshot):
    receiver = Receiver()
    try:
        receiver.answers = [500]
        client = MlflowClient(web_server.url)
        hook_id = client.create_webhook(
            "deploy-on-register", receiver.url, ["registered_model.created"]
        ).webhook_id
        client.create_registered_model("churn")
        receiver.wait_for(1)
        history = f"{web_server.url}/api/ledger/webhooks/{hook_id}/deliveries"
        while (
            httpx.get(history).json()["deliveries"][0]["status"] != "delivered"
        ):  # recorded after the answer
            time.sleep(0.05)
        page.goto("/")
        page.get_by_role("link", name="Webhooks").click()
        hook = page.locator("section.webhook", has_text="deploy-on-register")
        expect(hook).to_contain_text("registered_model.created")
        expect(hook).to_contain_text(receiver.url)
        row = hook.locator("table.deliveries tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("delivered")
        expect(row.locator("td.num").first).to_have_text("2")  # attempts: the 500, then the 200
        screenshot(page, "webhooks")
    finally:
        receiver.close()
