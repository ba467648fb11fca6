"""The live event stream (``/api/ledger/stream``, Server-Sent Events) and ``trackledger events
--follow``, against a real server."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from tests.api.conftest import API, ServerProcess, mlflow_error

pytestmark = pytest.mark.e2e


def new_run(http) -> str:
    exp = http.post(f"{API}/experiments/create", json={"name": f"stream-{uuid.uuid4().hex}"}).json()[
        "experiment_id"
    ]
    return http.post(f"{API}/runs/create", json={"experiment_id": exp, "start_time": 1}).json()["run"][
        "info"
    ]["run_id"]


def log(http, run_id: str, step: int) -> None:
    body = {"run_id": run_id, "key": "loss", "value": 1.0 / (step + 1), "timestamp": 1, "step": step}
    assert http.post(f"{API}/runs/log-metric", json=body).status_code == 200


def step_of(message: dict) -> int:
    return message["data"]["metrics"][0].get("step", 0)  # a default is left out of the JSON


def messages(lines, count: int) -> list[dict]:
    """The next ``count`` SSE messages of a stream's lines: ``{"id", "event", "data"}`` (comments
    skipped)."""
    found, current = [], {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if current:
                found.append({**current, "data": json.loads(current["data"])})
                current = {}
                if len(found) == count:
                    return found
            continue
        field, _, value = line.partition(": ")
        current[field] = value
    raise AssertionError(f"the stream ended after {len(found)} of {count} messages")


def test_the_stream_sends_history_then_live_events_in_order(server, http):
    run_id = new_run(http)
    log(http, run_id, 0)
    with http.stream(
        "GET", "/api/ledger/stream", params={"run_id": run_id, "type": "batch_logged"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        (first,) = messages(lines, 1)
        assert first["event"] == "batch_logged" and step_of(first) == 0
        assert int(first["id"]) == first["data"]["seq"]
        for step in (1, 2, 3):
            log(http, run_id, step)
        live = messages(lines, 3)
    assert [step_of(m) for m in live] == [1, 2, 3]
    seqs = [int(m["id"]) for m in [first, *live]]
    assert seqs == sorted(seqs) and all(m["data"]["run_id"] == run_id for m in live)


def test_a_resumed_stream_has_no_gap_and_no_repeat(server, http):
    run_id = new_run(http)
    for step in range(5):
        log(http, run_id, step)
    with http.stream(
        "GET", "/api/ledger/stream", params={"run_id": run_id, "type": "batch_logged"}
    ) as response:
        seen = messages(response.iter_lines(), 2)
    for step in range(5, 8):
        log(http, run_id, step)
    headers = {"Last-Event-ID": seen[-1]["id"]}
    with http.stream(
        "GET", "/api/ledger/stream", params={"run_id": run_id, "type": "batch_logged"}, headers=headers
    ) as response:
        seen += messages(response.iter_lines(), 6)
    assert [step_of(m) for m in seen] == list(range(8))


def test_an_idle_stream_sends_heartbeats(server, http):
    after = http.get("/api/ledger/events", params={"limit": 10000}).json()["events"][-1]["seq"] + 1000
    with http.stream("GET", "/api/ledger/stream", params={"after": after, "heartbeat": 1}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith(": trackledger events after seq")
        assert [line for line in (next(lines) for _ in range(4)) if line] == [": heartbeat", ": heartbeat"]


@pytest.mark.parametrize(
    ("params", "headers", "message"),
    [
        ({"after": "-1"}, {}, "'after'"),
        ({"after": "x"}, {}, "'after'"),
        ({"heartbeat": "0"}, {}, "'heartbeat'"),
        ({}, {"Last-Event-ID": "abc"}, "Last-Event-ID"),
    ],
)
def test_bad_stream_requests_are_400s(server, http, params, headers, message):
    error = mlflow_error(
        http.get("/api/ledger/stream", params=params, headers=headers), 400, "INVALID_PARAMETER_VALUE"
    )
    assert message in error["message"]


def test_events_follow_prints_events_as_they_land(server, http):
    run_id = new_run(http)
    log(http, run_id, 0)
    cmd = [sys.executable, "-m", "trackledger", "events", "--follow", "--server", server.url, "--run", run_id]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        created, first = lines.get(timeout=60), lines.get(timeout=60)
        assert "run_created" in created and "batch_logged" in first and f"run={run_id}" in first
        log(http, run_id, 1)
        http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "stage", "value": "production-ready"})
        second, third = lines.get(timeout=60), lines.get(timeout=60)
        assert "batch_logged" in second and "metrics loss=0.5 (step 1)" in second
        assert "tags stage=production-ready" in third
        assert int(first.split()[0]) < int(second.split()[0]) < int(third.split()[0])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_events_follow_needs_a_server(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trackledger", "events", "--follow", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--follow needs --server URL" in done.stderr and not done.stdout


def test_open_streams_end_when_the_server_shuts_down(tmp_path):
    proc = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    ended = threading.Event()

    def read():
        with httpx.stream("GET", proc.url + "/api/ledger/stream", timeout=120) as response:
            for _line in response.iter_lines():
                pass
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)  # let the stream open (the assertions below hold either way)
    assert proc.stop() == 0
    reader.join(timeout=60)
    assert ended.is_set()
    # uvicorn did not have to cancel the stream at the end of its graceful-shutdown wait.
    assert "timeout graceful shutdown exceeded" not in proc.read_log()
