"""Many writers at once, and kill -9 of the server while clients log: every acknowledged write survives."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.api.conftest import ServerProcess, trackledger

pytestmark = pytest.mark.e2e

API = "/api/2.0/mlflow"


def _new_run(url: str, name: str) -> str:
    with httpx.Client(base_url=url) as http:
        exp = http.post(f"{API}/experiments/create", json={"name": name}).json()["experiment_id"]
        return http.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]


def _history(http: httpx.Client, run_id: str, key: str) -> list[dict]:
    resp = http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": key})
    assert resp.status_code == 200, resp.text
    return resp.json().get("metrics", [])


def test_sixteen_threads_logging_at_once(client, server):
    from mlflow.entities import Metric

    run_id = client.create_run(client.create_experiment("sixteen")).info.run_id
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for step in range(50):
                client.log_metric(run_id, f"w{t}", float(step), step=step, timestamp=1000 + step)
            client.log_batch(run_id, metrics=[Metric(f"b{t}", float(i), 1, i) for i in range(200)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    for t in range(16):
        assert [m.step for m in client.get_metric_history(run_id, f"w{t}")] == list(range(50))
        assert len(client.get_metric_history(run_id, f"b{t}")) == 200


def test_kill_9_loses_no_acknowledged_write(tmp_path):
    proc = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    run_id = _new_run(proc.url, "crash")
    acked: dict[int, list[int]] = {t: [] for t in range(4)}
    stop = threading.Event()

    def writer(t: int) -> None:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            step = 0
            while not stop.is_set():
                body = {"run_id": run_id, "key": f"k{t}", "value": float(step), "timestamp": 1, "step": step}
                try:
                    resp = http.post(f"{API}/runs/log-metric", json=body)
                except httpx.HTTPError:
                    return  # the server is gone: this write was never acknowledged
                if resp.status_code == 200:
                    acked[t].append(step)
                step += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    while sum(map(len, acked.values())) < 400:  # kill mid-stream, after real traffic
        time.sleep(0.01)
    proc.kill()
    stop.set()
    for th in threads:
        th.join()

    proc.start()
    with httpx.Client(base_url=proc.url, timeout=60) as http:
        for t, steps in acked.items():
            stored = {m["step"] for m in _history(http, run_id, f"k{t}")}
            assert set(steps) <= stored, f"writer {t} lost {sorted(set(steps) - stored)[:10]}"
    assert proc.stop() == 0, proc.read_log()
    done = trackledger("verify", "--store", proc.store)
    assert done.returncode == 0, done.stdout + done.stderr


def test_state_survives_restart_params_stay_immutable(tmp_path):
    proc = ServerProcess(str(tmp_path / "data"), tmp_path).start()
    run_id = _new_run(proc.url, "restart")
    with httpx.Client(base_url=proc.url) as http:
        body = {"run_id": run_id, "key": "lr", "value": "0.1"}
        assert http.post(f"{API}/runs/log-parameter", json=body).status_code == 200
        assert http.post(f"{API}/runs/delete", json={"run_id": run_id}).status_code == 200
    assert proc.stop() == 0, proc.read_log()
    proc.start()
    with httpx.Client(base_url=proc.url) as http:
        body = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}
        resp = http.post(f"{API}/runs/log-metric", json=body)
        assert resp.status_code == 400 and "must be in the 'active' state" in resp.json()["message"]
        assert http.post(f"{API}/runs/restore", json={"run_id": run_id}).status_code == 200
        same = http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"})
        assert same.status_code == 200
        other = http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"})
        assert other.status_code == 400 and other.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        dup = http.post(f"{API}/experiments/create", json={"name": "restart"})
        assert dup.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
        exp = http.post(f"{API}/experiments/create", json={"name": "after-restart"}).json()["experiment_id"]
        assert exp == "2"  # ids continue after the ones created before the restart
    assert proc.stop() == 0, proc.read_log()
