"""Webhook delivery from the ledger, with a real server and real receivers on loopback: the seed's
pipeline, trackledger's own events and filters, retries (500 then 200, Retry-After, a receiver
that never answers), failures for good, disabled and deleted webhooks."""

from __future__ import annotations

import time

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from tests.api.conftest import API, ServerProcess
from tests.api.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

SECRET = "pipeline-secret"
ARGS = ("--webhook-allow-private", "--webhook-retry-max", "0.5", "--webhook-timeout", "1")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("webhooks-delivery")
    proc = ServerProcess(str(workdir / "data"), workdir, args=ARGS).start()
    yield proc
    if proc.proc.poll() is None:
        assert proc.stop() == 0, proc.read_log()


@pytest.fixture
def receiver():
    rec = Receiver(secret=SECRET)
    yield rec
    rec.close()


def create(http, receiver, events, **fields) -> str:
    body = {"name": "hook", "url": receiver.url, "events": events, "secret": SECRET, **fields}
    resp = http.post(f"{API}/webhooks", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["webhook"]["webhook_id"]


def deliveries(http, webhook_id: str) -> list[dict]:
    return http.get(f"/api/ledger/webhooks/{webhook_id}/deliveries").json()["deliveries"]


def wait_until(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
    return found


def test_the_seed_pipeline_hears_the_registered_model_and_the_production_ready_tag(
    server, client, http, receiver
):
    from sklearn.linear_model import LogisticRegression

    client.create_webhook("deploy", receiver.url, ["model_version.created"], secret=SECRET)
    create(http, receiver, ["run_tag.set"], filter={"tag_key": "stage"})
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run() as run:
        model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
        info = mlflow.sklearn.log_model(model, name="model")
        mlflow.set_tag("owner", "alice")  # another key: filtered out
        mlflow.set_tag("stage", "production-ready")
    version = mlflow.register_model(info.model_uri, "churn")

    found = receiver.wait_for(2)
    assert all(d.signed for d in found)
    (tag,) = receiver.of_kind("run_tag.set")
    assert tag.payload["data"] == {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "key": "stage",
        "value": "production-ready",
    }
    (created,) = receiver.of_kind("model_version.created")
    data = created.payload["data"]
    assert (data["name"], data["version"], data["run_id"]) == ("churn", version.version, run.info.run_id)
    assert data["source"] == version.source and set(data) == {
        "name",
        "version",
        "source",
        "run_id",
        "tags",
        "description",
    }
    assert created.payload["timestamp"].endswith("+00:00")


def test_own_kinds_carry_their_data(server, client, http, receiver):
    kinds = [
        "run.created",
        "run.finished",
        "run.failed",
        "run_tag.deleted",
        "logged_model.created",
        "logged_model.ready",
        "model_version_stage.transitioned",
        "model_version_alias.created",
    ]
    create(http, receiver, kinds)
    exp = client.create_experiment("own-kinds")
    run = client.create_run(exp, run_name="r1", tags={"team": "ml"})
    client.set_tag(run.info.run_id, "doomed", "x")
    client.delete_tag(run.info.run_id, "doomed")
    model = client.create_logged_model(exp, name="lm", source_run_id=run.info.run_id)
    client.finalize_logged_model(model.model_id, "READY")
    client.set_terminated(run.info.run_id, "FINISHED", end_time=1234)
    failed = client.create_run(exp)
    client.set_terminated(failed.info.run_id, "FAILED")
    client.create_registered_model("staged")
    client.create_model_version("staged", f"runs:/{run.info.run_id}/m", run_id=run.info.run_id)
    client.transition_model_version_stage("staged", "1", "Production")
    client.set_registered_model_alias("staged", "champion", "1")

    found = receiver.wait_for(9)
    assert [d.kind for d in found] == [
        "run.created",
        "run_tag.deleted",
        "logged_model.created",
        "logged_model.ready",
        "run.finished",
        "run.created",
        "run.failed",
        "model_version_stage.transitioned",
        "model_version_alias.created",
    ]
    by_kind = {d.kind: d.payload["data"] for d in found}
    run_id = run.info.run_id
    assert by_kind["run.created"]["experiment_id"] == exp
    assert found[0].payload["data"] == {
        "run_id": run_id,
        "experiment_id": exp,
        "run_name": "r1",
        "user_id": run.info.user_id,
        "start_time": run.info.start_time,
        "tags": {"team": "ml", "mlflow.runName": "r1"},
    }
    assert by_kind["run_tag.deleted"] == {"run_id": run_id, "experiment_id": exp, "key": "doomed"}
    assert by_kind["logged_model.created"]["model_id"] == model.model_id
    assert by_kind["logged_model.created"]["source_run_id"] == run_id
    assert by_kind["logged_model.ready"] == {
        "model_id": model.model_id,
        "experiment_id": exp,
        "status": "READY",
    }
    assert by_kind["run.finished"] == {
        "run_id": run_id,
        "experiment_id": exp,
        "status": "FINISHED",
        "end_time": 1234,
    }
    assert by_kind["model_version_stage.transitioned"] == {
        "name": "staged",
        "version": "1",
        "stage": "Production",
    }
    assert by_kind["model_version_alias.created"] == {"name": "staged", "alias": "champion", "version": "1"}


def test_an_experiment_filter_hears_only_its_experiments(client, http, receiver):
    mine, other = client.create_experiment("mine"), client.create_experiment("other")
    create(http, receiver, ["run.created"], filter={"experiment_ids": [mine]})
    client.create_run(other)
    ours = client.create_run(mine)
    (delivery,) = receiver.wait_for(1)
    assert delivery.payload["data"]["run_id"] == ours.info.run_id
    client.create_run(mine)
    assert len(receiver.wait_for(2)) == 2  # in order: the other experiment's run was skipped, not pending


def test_500_then_200_is_one_delivery_with_every_attempt_recorded(client, http, receiver):
    receiver.answers = [500, 503, 500]
    webhook_id = create(http, receiver, ["registered_model.created"])
    client.create_registered_model("retried")
    (delivery,) = receiver.wait_for(1)
    (record,) = wait_until(lambda: [d for d in deliveries(http, webhook_id) if d["status"] == "delivered"])
    assert record["delivery_id"] == delivery.delivery_id and record["attempts"] == 4
    assert [a["response_status"] for a in record["attempt_log"]] == [500, 503, 500, 200]
    assert record["attempt_log"][0]["response_body"] == "answer 500"
    assert all(a["latency_ms"] >= 0 for a in record["attempt_log"])
    assert receiver.requests == 4


def test_a_receiver_that_never_answers_times_out_and_holds_back_no_other(client, http, receiver):
    healthy = Receiver(secret=SECRET)
    try:
        receiver.answers = ["hang", "hang"]
        stuck = create(http, receiver, ["registered_model.created"])
        create(http, healthy, ["registered_model.created"])
        client.create_registered_model("slow-1")
        client.create_registered_model("slow-2")
        assert [d.payload["data"]["name"] for d in healthy.wait_for(2)] == ["slow-1", "slow-2"]
        assert [d.payload["data"]["name"] for d in receiver.wait_for(2)] == ["slow-1", "slow-2"]
        first = [d for d in deliveries(http, stuck) if d["status"] == "delivered"][-1]
        assert first["attempts"] == 3 and "timed out" in first["attempt_log"][0]["error"].lower()
    finally:
        healthy.close()


def test_a_4xx_fails_for_good_and_delivery_moves_on(client, http, receiver):
    receiver.answers = [404]
    webhook_id = create(http, receiver, ["registered_model.created"])
    client.create_registered_model("refused")
    client.create_registered_model("accepted")
    (delivery,) = receiver.wait_for(1)
    assert delivery.payload["data"]["name"] == "accepted"
    statuses = sorted((d["status"], d["response_status"]) for d in deliveries(http, webhook_id))
    assert statuses == [("delivered", 200), ("failed", 404)]


def test_a_disabled_webhook_delivers_nothing_then_resumes_after_what_it_missed(client, http, receiver):
    webhook_id = create(http, receiver, ["registered_model.created"], status="DISABLED")
    client.create_registered_model("while-disabled")
    http.patch(f"{API}/webhooks/{webhook_id}", json={"status": "ACTIVE"})
    client.create_registered_model("after-enabling")
    (delivery,) = receiver.wait_for(1)  # delivered in order: the first would have come first
    assert delivery.payload["data"]["name"] == "after-enabling"


def test_updates_apply_and_a_deleted_webhook_stops(client, http, receiver):
    moved = Receiver(secret="new-secret")
    try:
        webhook_id = create(http, receiver, ["registered_model.created"])
        client.create_registered_model("before-move")
        receiver.wait_for(1)
        client.update_webhook(webhook_id, url=moved.url, secret="new-secret")
        client.create_registered_model("after-move")
        (delivery,) = moved.wait_for(1)
        assert delivery.signed and delivery.payload["data"]["name"] == "after-move"
        client.delete_webhook(webhook_id)
        assert http.get(f"/api/ledger/webhooks/{webhook_id}/deliveries").status_code == 404
        create(http, receiver, ["registered_model.created"])  # a witness: it hears what follows
        client.create_registered_model("after-delete")
        assert receiver.wait_for(2)[1].payload["data"]["name"] == "after-delete"
        assert len(moved.deliveries) == 1
    finally:
        moved.close()


def test_nothing_is_lost_while_the_receiver_is_down_and_the_server_is_killed(tmp_path):
    receiver = Receiver(secret=SECRET)
    port = receiver.port
    proc = ServerProcess(str(tmp_path / "data"), tmp_path, args=ARGS).start()
    try:
        client = MlflowClient(proc.url)
        client.create_webhook("outage", receiver.url, ["registered_model.created"], secret=SECRET)
        names = [f"m{i:02d}" for i in range(20)]
        for name in names[:5]:
            client.create_registered_model(name)
        receiver.wait_for(5)
        receiver.close()  # down: connections refused
        for name in names[5:12]:
            client.create_registered_model(name)
        proc.kill()  # kill -9, with deliveries pending
        proc.start()
        client = MlflowClient(proc.url)
        for name in names[12:]:
            client.create_registered_model(name)
        back = Receiver(secret=SECRET, port=port)
        try:
            found = [*receiver.deliveries, *back.wait_for(len(names) - 5)]
            while len({d.delivery_id for d in found}) < len(names):
                found = [*receiver.deliveries, *back.wait_for(len(back.deliveries) + 1)]
        finally:
            back.close()
    finally:
        if proc.proc.poll() is None:
            assert proc.stop() == 0, proc.read_log()
    ids_by_name: dict[str, set[str]] = {}
    for d in found:
        assert d.signed
        ids_by_name.setdefault(d.payload["data"]["name"], set()).add(d.delivery_id)
    assert list(ids_by_name) == names  # every one, in ledger order (first arrivals)
    assert all(len(ids) == 1 for ids in ids_by_name.values())  # a duplicate has the same delivery id


def test_a_delivery_failing_past_the_max_age_is_marked_failed_and_delivery_moves_on(tmp_path):
    receiver = Receiver(secret=SECRET)
    args = (*ARGS, "--webhook-max-age", "2")
    proc = ServerProcess(str(tmp_path / "data"), tmp_path, args=args).start()
    try:
        client = MlflowClient(proc.url)
        receiver.answers = [500] * 1000
        hook = client.create_webhook("aging", receiver.url, ["registered_model.created"], secret=SECRET)
        client.create_registered_model("too-old")
        with httpx.Client(base_url=proc.url, timeout=60) as http:
            (failed,) = wait_until(
                lambda: [d for d in deliveries(http, hook.webhook_id) if d["status"] == "failed"]
            )
            assert failed["attempts"] >= 2 and failed["response_status"] == 500
            assert failed["attempt_log"][-1]["ts"] - failed["event_ts"] >= 2000
            receiver.answers = []
            client.create_registered_model("fresh")
            (delivery,) = receiver.wait_for(1)
            assert delivery.payload["data"]["name"] == "fresh"
    finally:
        receiver.close()
        assert proc.stop() == 0, proc.read_log()


def test_imported_history_triggers_nothing(client, http, receiver):
    import msgspec
    from trackledger.ledger.events import RegisteredModelCreated, new_event_id

    create(http, receiver, ["registered_model.created"])
    event_id = new_event_id()
    imported = RegisteredModelCreated(
        id=event_id, name="imported-model", registered_model_id=event_id, imported_from="sqlite:///mlflow.db"
    )
    body = msgspec.msgpack.encode({"events": [imported]})
    resp = http.post("/api/ledger/import", content=body, headers={"Content-Type": "application/msgpack"})
    assert resp.json() == {"appended": 1}, resp.text
    client.create_registered_model("made-here")
    (delivery,) = receiver.wait_for(1)  # in order: the imported one would have come first
    assert delivery.payload["data"]["name"] == "made-here"
