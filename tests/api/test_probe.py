"""The release probe: the server process driven with bad input and a fuzzer.

Every answer is below 500, and a refused request appends nothing to the ledger: lone
surrogates, JSON nested 10,000 deep, bodies past the cap (declared or chunked), invalid UTF-8 in
artifact paths, and hypothesis-drawn bodies over every MLflow route, built from the request
Structs' field names with hostile values.
"""

from __future__ import annotations

import json
import socket

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackledger.api import protocol
from trackledger.api.app import MLFLOW_ROUTES

from tests.api.conftest import API, ServerProcess, mlflow_error

pytestmark = pytest.mark.e2e

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
BODY_CAP = 1024 * 1024
LONE = "a\ud800"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("probe")
    proc = ServerProcess(str(workdir / "data"), workdir, args=("--max-body-mb", "1")).start()
    yield proc
    assert proc.stop() == 0, proc.read_log()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def ids(http) -> dict:
    experiment = http.post(f"{API}/experiments/create", json={"name": "probe"}).json()["experiment_id"]
    run = http.post(f"{API}/runs/create", json={"experiment_id": experiment, "start_time": 1}).json()
    http.post(f"{API}/registered-models/create", json={"name": "probe-model"})
    model = http.post(f"{API}/logged-models", json={"experiment_id": experiment, "name": "probe"}).json()
    return {
        "experiment_id": experiment,
        "run_id": run["run"]["info"]["run_id"],
        "model_id": model["model"]["info"]["model_id"],
    }


def last_seq(http) -> int:
    events, after = [], 0
    while True:
        page = http.get("/api/ledger/events", params={"after": after, "limit": 10000}).json()
        events = page["events"] or events
        if "next_after" not in page:
            return events[-1]["seq"] if events else after
        after = page["next_after"]


class Appends:
    """Asserts a block appended nothing to the ledger."""

    def __init__(self, http):
        self.http = http

    def __enter__(self):
        self.before = last_seq(self.http)

    def __exit__(self, *exc):
        if exc[0] is None:
            assert last_seq(self.http) == self.before, "a refused request appended events"


def string_bodies(ids: dict, text: str) -> dict[str, dict]:
    """The eleven endpoints that take a string, each with ``text`` in one of its strings."""
    run, experiment = ids["run_id"], ids["experiment_id"]
    return {
        "runs/set-tag": {"run_id": run, "key": text, "value": "v"},
        "runs/log-parameter": {"run_id": run, "key": "p", "value": text},
        "runs/log-batch": {"run_id": run, "tags": [{"key": "t", "value": text}]},
        "runs/log-inputs": {"run_id": run, "datasets": [{"dataset": {"name": text, "digest": "d"}}]},
        "experiments/create": {"name": text},
        "experiments/set-experiment-tag": {"experiment_id": experiment, "key": "k", "value": text},
        "runs/create": {"experiment_id": experiment, "run_name": text},
        "runs/update": {"run_id": run, "run_name": text},
        "registered-models/create": {"name": text},
        "logged-models": {"experiment_id": experiment, "name": text},
        "runs/log-metric": {"run_id": run, "key": text, "value": 1, "timestamp": 1, "step": 0},
    }


def test_a_lone_surrogate_is_a_400_on_every_endpoint_and_appends_nothing(http, ids):
    for endpoint, body in string_bodies(ids, LONE).items():
        with Appends(http):
            resp = http.post(f"{API}/{endpoint}", content=json.dumps(body))  # ensure_ascii: "\ud800"
            assert "surrogate" in mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"], endpoint
    raw = (
        json.dumps({"run_id": ids["run_id"], "key": "k", "value": "v"})
        .encode()
        .replace(b'"v"', b'"\xed\xa0\x80"')
    )
    with Appends(http):
        mlflow_error(http.post(f"{API}/runs/set-tag", content=raw), 400, "INVALID_PARAMETER_VALUE")
    emoji = http.post(
        f"{API}/runs/set-tag", content=json.dumps({"run_id": ids["run_id"], "key": "ok", "value": "😀"})
    )
    assert emoji.status_code == 200  # a surrogate pair is a character: taken


def test_json_nested_10000_deep_is_a_400(http, ids):
    deep = "[" * 10_000 + "]" * 10_000
    for endpoint, body in string_bodies(ids, "x").items():
        text = json.dumps(body)[:-1] + f', "unknown": {deep}}}'
        with Appends(http):
            mlflow_error(http.post(f"{API}/{endpoint}", content=text), 400, "INVALID_PARAMETER_VALUE")


def test_bodies_past_the_cap_are_refused_while_read(http, ids, server):
    big = json.dumps({"run_id": ids["run_id"], "key": "k" * (2 * BODY_CAP), "value": 1, "timestamp": 1})
    with Appends(http):
        declared = http.post(f"{API}/runs/log-metric", content=big)
        assert "cap" in mlflow_error(declared, 413, "RESOURCE_LIMIT_EXCEEDED")["message"]

    def chunks():
        for _ in range(64):
            yield b" " * 65536  # 4 MB of whitespace, no Content-Length

    with Appends(http), httpx.Client(base_url=server.url, timeout=60) as fresh:
        mlflow_error(fresh.post(f"{API}/runs/log-metric", content=chunks()), 413, "RESOURCE_LIMIT_EXCEEDED")
    path = f"0/{ids['run_id']}/artifacts/big.bin"
    assert (
        http.put(f"{ARTIFACTS}/{path}", content=b"x" * (2 * BODY_CAP)).status_code == 200
    )  # streamed: exempt


def test_invalid_utf8_artifact_paths_are_refused(http, ids, server):
    raw = f"0/{ids['run_id']}/artifacts/a%c0%ae.txt"
    with Appends(http):
        for method in ("PUT", "GET", "DELETE"):
            resp = httpx.request(
                method, f"{server.url}{ARTIFACTS}/{raw}", content=b"x" if method == "PUT" else None
            )
            assert "UTF-8" in mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")["message"], method
        listing = httpx.get(f"{server.url}{ARTIFACTS}?path=0%2F%ff")
        mlflow_error(listing, 400, "INVALID_PARAMETER_VALUE")
    for name in ("a\ufffd.txt", "a%EF%BF%BD.txt"):  # the character U+FFFD itself is a valid name
        assert http.put(f"{ARTIFACTS}/0/{ids['run_id']}/artifacts/{name}", content=b"x").status_code == 200


# The fuzzer ------------------------------------------------------------------------------

FIELDS = sorted(
    {
        name
        for value in vars(protocol).values()
        if isinstance(value, type) and issubclass(value, msgspec.Struct)
        for name in value.__struct_fields__
    }
)
NASTY_TEXT = st.sampled_from(
    [
        LONE,
        "\udfff",
        "\x00",
        "",
        " ",
        "'; DROP TABLE runs; --",
        "../../etc/passwd",
        "%c0%ae",
        "x" * 70_000,
        "😀",
        "NaN",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    NASTY_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=3),
    max_leaves=8,
)
ROUTES = sorted(MLFLOW_ROUTES)
# The routes with the logged model's id in their path ({model} is filled in, or left as sent).
MODEL_ROUTES = [
    ("GET", "logged-models/{model}"),
    ("PATCH", "logged-models/{model}"),
    ("DELETE", "logged-models/{model}"),
    ("PATCH", "logged-models/{model}/tags"),
    ("DELETE", "logged-models/{model}/tags/{key}"),
]


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_bodies_never_5xx_and_refusals_append_nothing(http, ids, data):
    method, route = data.draw(st.sampled_from(ROUTES + MODEL_ROUTES))
    model = data.draw(st.sampled_from([ids["model_id"], "m-" + "0" * 32, "%ff", "..", "%ED%A0%80"]))
    route = route.format(model=model, key=data.draw(st.sampled_from(["k", "a/b", "%c0%ae", "x" * 300])))
    known = st.sampled_from([ids["run_id"], ids["experiment_id"], "0", "probe-model", "1"])
    body = data.draw(st.dictionaries(st.sampled_from(FIELDS), VALUES | known, max_size=6))
    before = last_seq(http)
    if method == "GET":
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        params = {
            k: v for k, v in params.items() if len(v) < 2000 and "\ud800" not in v and "\udfff" not in v
        }
        resp = http.get(f"{API}/{route}", params=params)
    else:
        resp = http.request(method, f"{API}/{route}", content=json.dumps(body))
    assert resp.status_code < 500, (method, route, body, resp.text)
    if resp.status_code >= 400:
        assert resp.json()["error_code"] and last_seq(http) == before, (method, route, body, resp.text)


def test_pages_render_every_value_the_api_accepted(http):
    """A run started at int64's largest value made its experiment and run pages a 500 for everyone."""
    experiment = http.post(f"{API}/experiments/create", json={"name": "extremes"}).json()["experiment_id"]
    big = 2**63 - 1
    run = http.post(f"{API}/runs/create", json={"experiment_id": experiment, "start_time": big}).json()
    run_id = run["run"]["info"]["run_id"]
    logged = [
        ("runs/update", {"run_id": run_id, "end_time": -big - 1, "status": "FINISHED"}),
        (
            "runs/log-metric",
            {"run_id": run_id, "key": "m", "value": 1e308, "timestamp": big, "step": -big - 1},
        ),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": "NaN", "timestamp": 0, "step": big}),
        ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "<script>alert(1)</script>"}),
    ]
    for endpoint, body in logged:
        resp = http.post(f"{API}/{endpoint}", json=body)
        assert resp.status_code == 200, (endpoint, resp.text)
    pages = [f"/experiments/{experiment}", f"/runs/{run_id}", f"/compare?run={run_id}", "/audit", "/"]
    pages += [f"/experiments/{experiment}?sort={column}" for column in ("duration", "start")]
    for page in pages:
        assert http.get(page).status_code == 200, page
    assert f"{big} ms (out of the calendar" in http.get(f"/runs/{run_id}").text


def test_log_batch_past_mlflows_size_is_refused_before_its_body_is_read(server, ids):
    """MLflow caps log-batch at 1,000,000 bytes: a larger declared length is refused at once, the
    body never sent (it was read whole first); a chunked one as soon as the cap is passed."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST {API}/runs/log-batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1040000\r\n\r\n".encode()
        )
        answer = sock.recv(65536)
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            answer += sock.recv(65536) or b"}"  # the JSON error ends with "}"; a close ends the wait
    assert answer.startswith(b"HTTP/1.1 400") and b"at most 1000000 bytes" in answer, answer[:300]

    def chunks():
        yield json.dumps({"run_id": ids["run_id"], "tags": []}).encode()[:-1] + b', "padding": "'
        for _ in range(16):
            yield b"x" * 65000  # 1,040,000 bytes more, no Content-Length

    with httpx.Client(base_url=server.url, timeout=60) as fresh:
        refused = fresh.post(f"{API}/runs/log-batch", content=chunks())
    assert "at most 1000000 bytes" in mlflow_error(refused, 400, "INVALID_PARAMETER_VALUE")["message"]
