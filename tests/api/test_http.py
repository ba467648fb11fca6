"""Raw HTTP against the application (in this process: quick): error shapes, bad input changing
nothing, aliases, native endpoints; and the JSON form of values JSON cannot hold."""

from __future__ import annotations

import base64
import io
import json
import math
import time

import pyarrow.parquet as pq
import pytest
from trackledger.api.http import metrics_for_json

from tests.api.conftest import API, in_process, ledger_events, mlflow_error


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    """Tighter SQL caps than the defaults, so the cap tests are quick."""
    with in_process(tmp_path_factory.mktemp("app") / "data", sql_timeout_s=1, sql_max_rows=1000) as client:
        yield client


def test_health_version_server_info_and_ajax_alias(http):
    assert http.get("/health").text == "OK"
    assert http.get("/version").status_code == 200
    info = http.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False
    a = http.post(f"{API}/experiments/search", json={"max_results": 1000}).json()
    b = http.post("/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 1000}).json()
    c = http.get(f"{API}/experiments/search", params={"max_results": 1000}).json()
    assert a == b == c and any(e["name"] == "Default" for e in a["experiments"])


def test_unknown_endpoint_wrong_method_and_malformed_json(http):
    mlflow_error(http.get(f"{API}/nonexistent-endpoint"), 404, "ENDPOINT_NOT_FOUND")
    mlflow_error(http.post(f"{API}/runs/get", json={}), 405, "METHOD_NOT_ALLOWED")
    resp = http.post(
        f"{API}/experiments/create", content=b"{not json", headers={"content-type": "application/json"}
    )
    mlflow_error(resp, 400, "BAD_REQUEST")
    mlflow_error(
        http.post(f"{API}/runs/log-metric", json={"run_id": "abc", "key": "m", "value": "x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    mlflow_error(http.get(f"{API}/runs/get"), 400, "INVALID_PARAMETER_VALUE")
    mlflow_error(
        http.get(f"{API}/experiments/get", params={"experiment_id": "abc"}), 400, "INVALID_PARAMETER_VALUE"
    )


def test_bad_input_changes_nothing(http, run_id):
    before = ledger_events(http)
    ts = int(time.time() * 1000)
    bad = [
        {
            "run_id": run_id,
            "metrics": [
                {"key": "ok", "value": 1, "timestamp": ts},
                {"key": "../x", "value": 1, "timestamp": ts},
            ],
        },
        {"run_id": run_id, "metrics": [{"key": "ok", "value": 1, "timestamp": ts}, {"key": "m", "value": 1}]},
        {"run_id": run_id, "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]},
        {
            "run_id": run_id,
            "metrics": [{"key": "m", "value": 1.0, "timestamp": ts, "step": i} for i in range(1001)],
        },
        # Would not fit the int64 columns of the ledger.
        {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": ts, "step": 2**63}]},
        {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": -(2**64), "step": 0}]},
    ]
    for body in bad:
        mlflow_error(http.post(f"{API}/runs/log-batch", json=body), 400, "INVALID_PARAMETER_VALUE")
    big = {
        "run_id": run_id,
        "tags": [{"key": f"t{i}", "value": "v" * 7999} for i in range(100)],
        "params": [{"key": f"p{i}", "value": "v" * 6000} for i in range(100)],
    }
    resp = http.post(f"{API}/runs/log-batch", json=big)
    assert "at most 1000000 bytes" in mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"]
    mlflow_error(
        http.post(
            f"{API}/runs/log-metric", json={"run_id": "f" * 32, "key": "m", "value": 1, "timestamp": 1}
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    missing_experiment = http.post(f"{API}/runs/create", json={"experiment_id": "424242"})
    mlflow_error(missing_experiment, 404, "RESOURCE_DOES_NOT_EXIST")
    assert ledger_events(http) == before
    data = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    assert "metrics" not in data and "params" not in data


def test_what_mlflow_accepts_is_accepted(http):
    exp = http.post(f"{API}/experiments/create", json={"name": "lenient"}).json()["experiment_id"]
    # MLflow checks no tag key at run creation; an empty mlflow.runName names nothing.
    body = {"experiment_id": exp, "run_name": "kept", "tags": [{"key": "a*b", "value": "x"}]}
    run_id = http.post(f"{API}/runs/create", json=body).json()["run"]["info"]["run_id"]
    # Python's json module writes NaN and out-of-range floats bare; MLflow's server reads them.
    raw = json.dumps({"run_id": run_id, "key": "nan", "value": math.nan, "timestamp": 1}).encode()
    assert http.post(f"{API}/runs/log-metric", content=raw).status_code == 200
    raw = b'{"run_id": "%s", "key": "big", "value": 1e999, "timestamp": 1}' % run_id.encode()
    assert http.post(f"{API}/runs/log-metric", content=raw).status_code == 200
    # A missing value is the empty string.
    assert http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "t"}).status_code == 200
    assert http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "p"}).status_code == 200
    empty_name = {"run_id": run_id, "key": "mlflow.runName", "value": ""}
    assert http.post(f"{API}/runs/set-tag", json=empty_name).status_code == 200
    run = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["run_name"] == "kept"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags == {"a*b": "x", "t": "", "mlflow.runName": "kept"}
    assert run["data"]["params"] == [{"key": "p", "value": ""}]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics == {"nan": "NaN", "big": 1.7976931348623157e308}
    # The same dataset logged again under another context stays one input, with the first context.
    dataset = {"name": "d", "digest": "abc", "source_type": "local", "source": "{}"}
    for context in ("train", "eval"):
        inputs = [{"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": context}]}]
        resp = http.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": inputs})
        assert resp.status_code == 200
    run = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert [i["tags"][0]["value"] for i in run["inputs"]["dataset_inputs"]] == ["train"]
    # An unknown run has no history; a max_results that is no number asks for all of it.
    missing_run = {"run_id": "f" * 32, "metric_key": "m"}
    assert http.get(f"{API}/metrics/get-history", params=missing_run).json() == {}
    for not_a_number in ("abc", "--1"):
        history = {"run_id": run_id, "metric_key": "nan", "max_results": not_a_number}
        assert len(http.get(f"{API}/metrics/get-history", params=history).json()["metrics"]) == 1
    # An input tag without a key or value gets the empty string.
    inputs = [{"dataset": {**dataset, "digest": "other"}, "tags": [{"value": "v"}]}]
    assert http.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": inputs}).status_code == 200


def test_what_mlflow_refuses_is_refused_and_writes_nothing(http, run_id):
    before = ledger_events(http)

    def log_input(digest: str, tag_value: str) -> str:
        dataset = {"name": "d", "digest": digest, "source_type": "local", "source": "{}"}
        inputs = [{"dataset": dataset, "tags": [{"key": "k", "value": tag_value}]}]
        resp = http.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": inputs})
        return mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"]

    assert "'digest' exceeds the maximum length of 36" in log_input("x" * 37, "v")
    assert "'value' exceeds the maximum length of 500" in log_input("abc", "v" * 501)
    for location, message in (
        ("runs:/abc/x", "cannot be a runs:/ URI"),
        ("/tmp/" + "a" * 2048, "Invalid artifact path length"),
        ("s3://bucket/x#frag", "can't include fragments or params"),
    ):
        body = {"name": f"loc-{len(location)}", "artifact_location": location}
        resp = http.post(f"{API}/experiments/create", json=body)
        assert message in mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"]
    for max_results in ("0", "-1"):
        params = {"run_id": run_id, "metric_key": "m", "max_results": max_results}
        mlflow_error(http.get(f"{API}/metrics/get-history", params=params), 400, "INVALID_PARAMETER_VALUE")
    resp = http.post(f"{API}/runs/search", json={"experiment_ids": ["1"], "max_results": 0})
    assert "must be a positive integer" in mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"]
    # Values past what int64 LIMIT/OFFSET take, and steps that are no numbers.
    far = base64.b64encode(json.dumps({"offset": 2**70}).encode()).decode()
    for path, body in (
        ("runs/search", {"experiment_ids": ["1"], "page_token": far}),
        ("experiments/search", {"page_token": far}),
        ("logged-models/search", {"experiment_ids": ["1"], "page_token": far}),
    ):
        mlflow_error(http.post(f"{API}/{path}", json=body), 400, "INVALID_PARAMETER_VALUE")
    huge = {"experiment_ids": ["1"], "max_results": 2**63 - 1}
    assert http.post(f"{API}/logged-models/search", json=huge).status_code == 200
    history = {"run_id": run_id, "metric_key": "m", "max_results": str(2**63 - 1)}
    assert http.get(f"{API}/metrics/get-history", params=history).status_code == 200
    bulk = {"run_ids": run_id, "metric_key": "m", "start_step": "abc"}
    bulk_answer = http.get(f"{API}/metrics/get-history-bulk-interval", params=bulk)
    mlflow_error(bulk_answer, 400, "INVALID_PARAMETER_VALUE")
    assert ledger_events(http) == before


def test_ids_and_versions_of_thousands_of_digits_are_400s(http):
    """int() refuses text of over 4,300 digits: such an id is MLflow's 400, not a 500."""
    before = ledger_events(http)
    digits = "7" * 5000
    message = f"Invalid experiment ID '{digits}'. Experiment ID must be a valid integer."
    for resp in (
        http.get(f"{API}/experiments/get", params={"experiment_id": digits}),
        http.post(f"{API}/experiments/delete", json={"experiment_id": digits}),
        http.post(f"{API}/runs/create", json={"experiment_id": digits}),
        http.post(f"{API}/runs/search", json={"experiment_ids": [digits]}),
    ):
        assert mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"] == message
    resp = http.get(f"{API}/model-versions/get", params={"name": "m", "version": digits})
    assert (
        "Parameter 'version' must be an integer"
        in mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"]
    )
    assert ledger_events(http) == before


def test_view_types_outside_mlflows_three_are_400s(http):
    resp = http.post(f"{API}/experiments/search", json={"view_type": "BOGUS"})
    assert mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"] == (
        "Invalid view_type 'BOGUS'. Valid view types are ['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']"
    )
    resp = http.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "run_view_type": "active_only"})
    assert (
        mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"] == "Invalid run_view_type 'active_only'"
    )
    for view_type in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        assert http.post(f"{API}/experiments/search", json={"view_type": view_type}).status_code == 200
        body = {"experiment_ids": ["0"], "run_view_type": view_type}
        assert http.post(f"{API}/runs/search", json=body).status_code == 200


def test_run_uuid_accepted_and_actor_recorded(http, run_id):
    body = {"run_uuid": run_id, "key": "by_uuid", "value": "NaN", "timestamp": 5, "step": "3"}
    assert http.post(f"{API}/runs/log-metric", json=body, headers={"user-agent": "probe/1"}).json() == {}
    metric = http.get(f"{API}/runs/get", params={"run_uuid": run_id}).json()["run"]["data"]["metrics"][0]
    assert metric == {"key": "by_uuid", "value": "NaN", "timestamp": 5, "step": 3}
    event = ledger_events(http, run_id=run_id)[-1]
    assert event["type"] == "batch_logged" and event["actor"] == "carol" and event["user_agent"] == "probe/1"
    assert event["actor_verified"] is False


def test_idempotency_key_prevents_duplicates(http, run_id):
    body = {"run_id": run_id, "key": "idem", "value": 1, "timestamp": 7, "step": 0}
    for _ in range(3):
        assert (
            http.post(f"{API}/runs/log-metric", json=body, headers={"Idempotency-Key": "k-1"}).status_code
            == 200
        )
    history = http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "idem"}).json()
    assert len(history["metrics"]) == 1
    assert (
        len(
            [
                e
                for e in ledger_events(http, run_id=run_id)
                if e["type"] == "batch_logged" and any(m["key"] == "idem" for m in e.get("metrics", []))
            ]
        )
        == 1
    )


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_appends_nothing(http, run_id):
    """Creates, renames and deletes: a retry's checks would refuse it (the name exists, the model is
    gone), so it must be answered from what its first attempt appended."""

    def twice(method: str, path: str, body: dict, key: str) -> dict:
        first = http.request(method, f"{API}/{path}", json=body, headers={"Idempotency-Key": key})
        appended = ledger_events(http)
        retry = http.request(method, f"{API}/{path}", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == retry.status_code == 200, (path, first.text, retry.text)
        assert ledger_events(http) == appended, path
        assert retry.json() == first.json(), path
        return first.json()

    exp = twice("POST", "experiments/create", {"name": "retried"}, "k-exp")["experiment_id"]
    run = twice("POST", "runs/create", {"experiment_id": exp}, "k-run")["run"]  # a generated name
    assert run["info"]["run_name"] and run["info"]["experiment_id"] == exp
    twice("POST", "registered-models/create", {"name": "retried-model"}, "k-model")
    version = twice("POST", "model-versions/create", {"name": "retried-model", "source": "s3://b/m"}, "k-v1")
    assert version["model_version"]["version"] == "1"
    renamed = {"name": "retried-model", "new_name": "renamed-model"}
    assert twice("POST", "registered-models/rename", renamed, "k-rename")["registered_model"]["name"] == (
        "renamed-model"
    )
    twice("DELETE", "registered-models/delete", {"name": "renamed-model"}, "k-delete")


def test_events_endpoint_pages_with_a_cursor(http, run_id):
    everything = ledger_events(http)
    seen, after = [], 0
    while True:
        page = http.get("/api/ledger/events", params={"after": after, "limit": 3}).json()
        seen += page["events"]
        if "next_after" not in page:
            break
        after = page["next_after"]
    assert [e["seq"] for e in seen] == [e["seq"] for e in everything]
    assert [e["seq"] for e in everything] == sorted(e["seq"] for e in everything)
    for bad in ({"after": -1}, {"after": "x"}, {"limit": 0}, {"limit": 10_001}):
        mlflow_error(http.get("/api/ledger/events", params=bad), 400, "INVALID_PARAMETER_VALUE")
    assert http.get("/api/ledger/events", params={"after": 10**30}).json() == {"events": []}


def test_sql_endpoint_formats(http, run_id):
    resp = http.post("/api/sql", json={"query": "SELECT 1 AS one, 'a' AS letter"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["rows"] == [[1, "a"]] and resp.json()["columns"] == ["one", "letter"]
    csv = http.post("/api/sql", json={"query": "SELECT 1 AS one", "format": "csv"})
    assert csv.text.splitlines()[0].strip('"') == "one"
    table = pq.read_table(
        io.BytesIO(http.post("/api/sql", json={"query": "SELECT 1 AS one", "format": "parquet"}).content)
    )
    assert table.column("one").to_pylist() == [1]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "COPY (SELECT 1) TO '/tmp/tl-sql-escape.csv'",
        "ATTACH '/tmp/tl-sql-escape.duckdb' AS other",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "CREATE TABLE sneaky AS SELECT 1",
        "DELETE FROM runs",
        "DROP TABLE runs",
    ],
)
def test_sql_endpoint_refuses_files_and_writes(http, query):
    mlflow_error(http.post("/api/sql", json={"query": query}), 400, "INVALID_PARAMETER_VALUE")


def test_sql_endpoint_stops_at_its_caps(http):
    resp = http.post("/api/sql", json={"query": "SELECT * FROM range(100000000)"})
    if resp.status_code == 200:  # a row cap may truncate rather than refuse
        assert len(resp.json()["rows"]) <= 1000
    else:
        mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")
    slow = "SELECT count(*) FROM range(100000000000) a"
    mlflow_error(http.post("/api/sql", json={"query": slow}), 400, "INVALID_PARAMETER_VALUE")


def test_history_bulk_interval_samples_each_run(http, run_id):
    metrics = [{"key": "curve", "value": float(i), "timestamp": 1, "step": i} for i in range(50)]
    assert http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}).status_code == 200
    # MLflow takes step bounds in pairs only.
    params = {"run_ids": [run_id], "metric_key": "curve", "max_results": 5, "start_step": 10, "end_step": 49}
    got = http.get(f"{API}/metrics/get-history-bulk-interval", params=params).json()["metrics"]
    assert [m["step"] for m in got] == [10, 20, 30, 39, 49]
    assert {m["run_id"] for m in got} == {run_id}


def test_one_log_call_is_one_event_and_the_name_follows_the_tag(http):
    exp = http.post(f"{API}/experiments/create", json={"name": "one-call-one-event"}).json()["experiment_id"]
    run_id = http.post(f"{API}/runs/create", json={"experiment_id": exp, "start_time": 1}).json()["run"][
        "info"
    ]["run_id"]
    before = len(ledger_events(http, run_id=run_id))
    http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "mlflow.runName", "value": "by-tag"})
    http.post(f"{API}/runs/update", json={"run_id": run_id, "run_name": "by-update", "status": "RUNNING"})
    new = ledger_events(http, run_id=run_id)[before:]
    assert [e["type"] for e in new] == ["batch_logged", "run_updated"]
    run = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["run_name"] == "by-update"
    assert {"key": "mlflow.runName", "value": "by-update"} in run["data"]["tags"]


def test_non_finite_metric_values_are_strings_in_json():
    values = [math.nan, math.inf, -math.inf, 1.5]
    run = {"data": {"metrics": [{"key": str(i), "value": v} for i, v in enumerate(values)]}}
    shown = metrics_for_json(run)["data"]["metrics"]
    assert [m["value"] for m in shown] == ["NaN", "Infinity", "-Infinity", 1.5]


def test_an_unexpected_error_is_a_500_whose_text_stays_in_the_log(tmp_path, monkeypatch, caplog):
    """The exception's text (here a path and a password) is logged under a reference, never sent."""
    from trackledger.projections.projection import Projection

    def failing_query(self, read, *args, **kwargs):
        raise RuntimeError("cannot open /srv/secret/path with password=hunter2")

    with in_process(tmp_path / "data", raise_server_exceptions=False) as client:
        monkeypatch.setattr(Projection, "query", failing_query)
        with caplog.at_level("ERROR", logger="trackledger"):
            resp = client.get(f"{API}/experiments/get", params={"experiment_id": "0"})
    body = mlflow_error(resp, 500, "INTERNAL_ERROR")
    assert "hunter2" not in resp.text and "/srv/secret" not in resp.text
    reference = body["message"].split("reference ")[1].split(")")[0]
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and "hunter2" in str(logged[0].exc_info[1])
