"""MLflow's webhook API against a real server: the mlflow client's create/get/list/update/delete/
test_webhook, the refusals (prompt events, bad URLs, private addresses), and the secret kept
sealed everywhere the server writes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.api.conftest import API, ServerProcess, mlflow_error
from tests.api.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

SECRET = "whsec-0d6f3b9a-never-in-clear"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("webhooks-api")
    proc = ServerProcess(str(workdir / "data"), workdir, args=("--webhook-allow-private",)).start()
    yield proc
    if proc.proc.poll() is None:
        assert proc.stop() == 0, proc.read_log()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    """A server with the default SSRF protection: no loopback or private receivers."""
    workdir = tmp_path_factory.mktemp("webhooks-strict")
    proc = ServerProcess(str(workdir / "data"), workdir).start()
    yield proc
    if proc.proc.poll() is None:
        assert proc.stop() == 0, proc.read_log()


@pytest.fixture
def receiver():
    rec = Receiver(secret=SECRET)
    yield rec
    rec.close()


def test_create_get_list_update_delete_with_the_mlflow_client(client, http, receiver):
    created = client.create_webhook(
        "ci-pipeline",
        receiver.url,
        ["model_version.created", "model_version_alias.created"],
        description="deploys",
        secret=SECRET,
    )
    assert created.name == "ci-pipeline" and created.url == receiver.url
    assert [str(e) for e in created.events] == ["model_version.created", "model_version_alias.created"]
    assert str(created.status) == "ACTIVE" and created.description == "deploys"
    assert created.creation_timestamp == created.last_updated_timestamp > 0

    got = client.get_webhook(created.webhook_id)
    assert (got.webhook_id, got.name, got.url) == (created.webhook_id, "ci-pipeline", receiver.url)
    assert created.webhook_id in [w.webhook_id for w in client.list_webhooks()]

    raw = http.get(f"{API}/webhooks/{created.webhook_id}").json()["webhook"]
    assert raw["events"][0] == {"entity": "MODEL_VERSION", "action": "CREATED"}
    assert "secret" not in raw and SECRET not in str(raw)

    updated = client.update_webhook(
        created.webhook_id, name="renamed", status="DISABLED", events=["model_version_tag.set"]
    )
    assert updated.name == "renamed" and str(updated.status) == "DISABLED"
    assert [str(e) for e in updated.events] == ["model_version_tag.set"]
    assert updated.url == receiver.url and updated.description == "deploys"  # unchanged
    assert updated.last_updated_timestamp >= created.last_updated_timestamp

    client.delete_webhook(created.webhook_id)
    with pytest.raises(MlflowException, match="not found"):
        client.get_webhook(created.webhook_id)
    mlflow_error(http.delete(f"{API}/webhooks/{created.webhook_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    mlflow_error(
        http.patch(f"{API}/webhooks/{created.webhook_id}", json={"name": "x"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_list_pages(client):
    ids = [
        client.create_webhook(f"page-{i}", "http://127.0.0.1:9/x", ["registered_model.created"]).webhook_id
        for i in range(3)
    ]
    first = client.list_webhooks(max_results=2)
    assert len(first) == 2 and first.token
    rest = client.list_webhooks(max_results=2, page_token=first.token)
    seen = [w.webhook_id for w in [*first, *rest]]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    for webhook_id in ids:
        client.delete_webhook(webhook_id)


def test_test_webhook_sends_a_signed_example(client, receiver):
    hook = client.create_webhook("tested", receiver.url, ["model_version.created"], secret=SECRET)
    result = client.test_webhook(hook.webhook_id)
    assert result.success and result.response_status == 200 and result.response_body == "answer 200"
    (delivery,) = receiver.wait_for(1)
    assert delivery.signed and delivery.kind == "model_version.created"
    assert set(delivery.payload) == {"entity", "action", "timestamp", "data"}
    assert delivery.payload["data"]["name"] == "example_model"

    result = client.test_webhook(hook.webhook_id, event="model_version_alias.deleted")
    assert result.success and receiver.wait_for(2)[1].kind == "model_version_alias.deleted"

    receiver.answers = [500]
    result = client.test_webhook(hook.webhook_id)
    assert not result.success and result.response_status == 500 and "500" in result.error_message
    client.delete_webhook(hook.webhook_id)


def test_test_webhook_does_not_follow_redirects(client, http, receiver):
    target = Receiver()
    try:
        redirector = Receiver()
        redirector.answers = [302]
        redirector.redirect_to = target.url
        hook = client.create_webhook("redirected", redirector.url, ["model_version.created"])
        result = client.test_webhook(hook.webhook_id)
        assert not result.success and result.response_status == 302
        assert target.requests == 0 and redirector.requests == 1
        client.delete_webhook(hook.webhook_id)
        redirector.close()
    finally:
        target.close()


def test_prompt_events_are_refused_clearly(client, http):
    with pytest.raises(
        MlflowException, match=r"prompt\.created' is not supported: this server has no prompts"
    ):
        client.create_webhook("prompts", "http://127.0.0.1:9/x", ["prompt.created"])
    body = {
        "name": "x",
        "url": "http://127.0.0.1:9/x",
        "events": [{"entity": "PROMPT_ALIAS", "action": "CREATED"}],
    }
    error = mlflow_error(http.post(f"{API}/webhooks", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert "'prompt_alias.created' is not supported" in error["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "http://127.0.0.1:9/x", "events": ["run.created"]}, "'name'"),
        ({"name": "x", "events": ["run.created"]}, "'url'"),
        ({"name": "x", "url": "http://127.0.0.1:9/x", "events": []}, "cannot be empty"),
        ({"name": "x", "url": "http://127.0.0.1:9/x", "events": ["run.exploded"]}, "Unknown webhook event"),
        ({"name": "x", "url": "ftp://127.0.0.1/x", "events": ["run.created"]}, "http or https"),
        ({"name": "x", "url": "http:///x", "events": ["run.created"]}, "no host"),
        (
            {"name": "x", "url": "http://127.0.0.1:9/x", "events": ["run.created"], "status": "ON"},
            "ACTIVE or DISABLED",
        ),
    ],
)
def test_bad_webhooks_are_400s_and_append_nothing(http, body, message):
    before = len(http.get("/api/ledger/events", params={"limit": 10000}).json()["events"])
    error = mlflow_error(http.post(f"{API}/webhooks", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert message in error["message"]
    assert len(http.get("/api/ledger/events", params={"limit": 10000}).json()["events"]) == before


def test_own_kinds_and_filters_over_http(client, http):
    body = {
        "name": "runs",
        "url": "http://127.0.0.1:9/x",
        "events": ["run_tag.set", {"entity": "RUN", "action": "FINISHED"}],
        "filter": {"experiment_ids": ["1"], "tag_key": "stage"},
    }
    hook = http.post(f"{API}/webhooks", json=body).json()["webhook"]
    assert hook["events"] == [] and hook["trackledger_events"] == ["run_tag.set", "run.finished"]
    assert hook["filter"] == {"experiment_ids": ["1"], "tag_key": "stage"}
    # The mlflow client cannot parse trackledger's kinds: its list leaves such webhooks out.
    assert hook["webhook_id"] not in [w.webhook_id for w in client.list_webhooks()]
    everything = http.get("/api/ledger/webhooks").json()["webhooks"]
    assert hook["webhook_id"] in [w["webhook_id"] for w in everything]
    patched = http.patch(f"{API}/webhooks/{hook['webhook_id']}", json={"filter": {"tag_key": ""}}).json()[
        "webhook"
    ]
    assert patched["filter"] == {"experiment_ids": ["1"], "tag_key": None}
    http.delete(f"{API}/webhooks/{hook['webhook_id']}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]:9/x",
        "http://localhost:9/x",
    ],
)
def test_private_addresses_are_refused_by_default(strict_server, url):
    with httpx.Client(base_url=strict_server.url, timeout=60) as http:
        body = {"name": "x", "url": url, "events": ["model_version.created"]}
        error = mlflow_error(http.post(f"{API}/webhooks", json=body), 400, "INVALID_PARAMETER_VALUE")
        assert "not a public address" in error["message"]


def test_a_name_resolving_to_loopback_is_refused_when_connecting(strict_server):
    receiver = Receiver()
    try:
        client = MlflowClient(strict_server.url)
        url = f"http://vm:{receiver.port}/hook"  # /etc/hosts: vm is 127.0.0.1
        hook = client.create_webhook("rebinding", url, ["model_version.created"])
        result = client.test_webhook(hook.webhook_id)
        assert not result.success and "127.0.0.1 is not a public address" in result.error_message
        assert receiver.requests == 0
    finally:
        receiver.close()


def test_the_secret_is_never_stored_or_shown_in_clear(tmp_path):
    data = tmp_path / "data"
    proc = ServerProcess(str(data), tmp_path, args=("--webhook-allow-private",)).start()
    try:
        client = MlflowClient(proc.url)
        hook = client.create_webhook(
            "sealed", "http://127.0.0.1:9/x", ["model_version.created"], secret=SECRET
        )
        client.update_webhook(hook.webhook_id, secret=SECRET + "-2")
        with httpx.Client(base_url=proc.url, timeout=60) as http:
            for table in ("webhooks", "events"):
                rows = http.post("/api/sql", json={"query": f"SELECT * FROM {table}"}).json()
                assert SECRET not in str(rows)
            assert (
                "secret_sealed"
                not in http.post("/api/sql", json={"query": "SELECT * FROM webhooks"}).json()["columns"]
            )
            assert SECRET not in http.get("/api/ledger/events").text
    finally:
        assert proc.stop() == 0
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    for path in [*files, proc.log_path]:
        assert SECRET.encode() not in Path(path).read_bytes(), path
    # The sealed secret opens with the key file the server created, and with nothing else.
    assert (data / ".state" / "secret.key").stat().st_mode & 0o077 == 0


def test_a_key_from_the_environment_keeps_secrets_usable_on_a_new_state_dir(tmp_path):
    env = {"TRACKLEDGER_SECRET_KEY": "correct horse battery staple"}
    receiver = Receiver(secret=SECRET)
    try:
        first = ServerProcess(
            str(tmp_path / "data"), tmp_path, args=("--webhook-allow-private",), env=env
        ).start()
        hook = MlflowClient(first.url).create_webhook(
            "k", receiver.url, ["model_version.created"], secret=SECRET
        )
        assert first.stop() == 0
        args = ("--webhook-allow-private", "--state-dir", str(tmp_path / "other-state"))
        second = ServerProcess(str(tmp_path / "data"), tmp_path, args=args, env=env).start()
        try:
            assert MlflowClient(second.url).test_webhook(hook.webhook_id).success
            assert receiver.wait_for(1)[0].signed
        finally:
            assert second.stop() == 0
    finally:
        receiver.close()
    assert not (tmp_path / "data" / ".state" / "secret.key").exists()
