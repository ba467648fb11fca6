"""``POST /api/sql`` within its caps: memory, threads, time, answer rows and bytes, concurrency."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.api.conftest import ServerProcess, mlflow_error, trackledger

pytestmark = pytest.mark.e2e

HOLD_S = 8  # the time cap: how long the query holding the only slot runs


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sql-limits")
    args = ("--sql-memory", "32", "--sql-max-bytes", "2000000", "--sql-max-concurrent", "1")
    proc = ServerProcess(str(workdir / "data"), workdir, args=(*args, "--sql-timeout", str(HOLD_S))).start()
    yield proc
    assert proc.stop() == 0, proc.read_log()


@pytest.fixture(scope="module")
def http(capped):
    with httpx.Client(base_url=capped.url, timeout=60) as c:
        yield c


def test_a_query_past_the_memory_cap_is_a_400_naming_it(http):
    query = "SELECT count(*) FROM (SELECT DISTINCT a.range * b.range FROM range(100000) a, range(100000) b)"
    body = mlflow_error(http.post("/api/sql", json={"query": query}), 400, "INVALID_PARAMETER_VALUE")
    assert "memory cap of 32 MB" in body["message"]


def test_the_answer_stops_at_the_byte_cap_and_says_so(http):
    resp = http.post("/api/sql", json={"query": "SELECT repeat('x', 1000000) AS s FROM range(500)"})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["truncated"] is True and answer["truncated_by"] == "bytes"
    assert 0 < answer["row_count"] <= 2 and len(resp.content) < 3_000_000
    csv = http.post("/api/sql", json={"query": "SELECT repeat('x', 1000000) FROM range(50)", "format": "csv"})
    assert csv.headers["x-trackledger-truncated"] == "bytes" and len(csv.content) < 3_000_000
    one = mlflow_error(
        http.post("/api/sql", json={"query": "SELECT repeat('x', 3000000)"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "byte cap" in one["message"]


def test_the_byte_cap_holds_the_answer_as_sent(http, capped):
    """Rows of control characters and quotes: 1 MB of Arrow data, 6 MB as JSON (each is sent as
    \\u0001), 2 MB as CSV (quotes doubled). Counting Arrow bytes answered all of it; the bytes sent
    are what the cap holds."""
    query = "SELECT repeat(chr(1), 1000) AS s, repeat('\"', 1000) AS q FROM range(1000)"
    answer = http.post("/api/sql", json={"query": query})
    assert answer.status_code == 200, answer.text
    assert answer.json()["truncated_by"] == "bytes" and 0 < answer.json()["row_count"] < 1000
    assert len(answer.content) <= 2_000_000
    csv = http.post("/api/sql", json={"query": query, "format": "csv"})
    assert csv.headers["x-trackledger-truncated"] == "bytes" and len(csv.content) <= 2_000_000
    too_wide = mlflow_error(
        http.post("/api/sql", json={"query": "SELECT repeat(chr(1), 400000) AS s"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "byte cap of 1.90735 MB" in too_wide["message"] and str(capped.workdir) not in too_wide["message"]
    assert http.post("/api/sql", json={"query": "SELECT 1"}).status_code == 200


def test_a_value_the_format_cannot_hold_is_a_400(http):
    """A list has no CSV form: refused with the reason, as any query the server cannot answer."""
    body = mlflow_error(
        http.post("/api/sql", json={"query": "SELECT [1, 2] AS l", "format": "csv"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert body["message"].startswith("Query refused: ")


def test_the_cli_says_the_cap_in_one_line(capped):
    cut = trackledger(
        "sql", "--server", capped.url, "--format", "csv", "SELECT repeat('x', 100000) FROM range(100)"
    )
    assert cut.returncode == 0 and 0 < len(cut.stdout.splitlines()) - 1 < 100
    assert "--sql-max-bytes" in cut.stderr and len(cut.stderr.splitlines()) == 1
    refused = trackledger("sql", "--server", capped.url, "SELECT repeat('x', 3000000)")
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "400" in refused.stderr and "byte cap" in refused.stderr and "{" not in refused.stderr


def test_a_complete_answer_says_it_is_complete(http):
    answer = http.post("/api/sql", json={"query": "SELECT * FROM range(3)"}).json()
    assert answer["truncated"] is False and "truncated_by" not in answer
    rows = http.post("/api/sql", json={"query": "SELECT * FROM range(20000)"}).json()
    assert rows["truncated"] is True and rows["truncated_by"] == "rows" and rows["row_count"] == 10_000


def test_the_sandbox_reveals_no_server_path(http, capped):
    settings = http.post("/api/sql", json={"query": "SELECT name, value FROM duckdb_settings()"}).json()
    assert str(capped.workdir) not in repr(settings["rows"])
    for query in ("SELECT * FROM 'relative.csv'", "SELECT * FROM duckdb_extensions()"):
        body = mlflow_error(http.post("/api/sql", json={"query": query}), 400, "INVALID_PARAMETER_VALUE")
        assert str(capped.workdir) not in body["message"] and "/root" not in body["message"]


def test_a_query_past_the_concurrency_cap_is_refused_at_once(http, capped):
    """One slot: while a long query holds it, another is answered 429 without waiting."""
    slow = "SELECT count(*) FROM range(100000000000) a"
    answers: list[httpx.Response] = []
    holder = threading.Thread(target=lambda: answers.append(http.post("/api/sql", json={"query": slow})))
    holder.start()
    refused = None
    deadline = time.monotonic() + HOLD_S
    while refused is None and holder.is_alive() and time.monotonic() < deadline:
        resp = httpx.post(capped.url + "/api/sql", json={"query": "SELECT 1"}, timeout=60)
        if resp.status_code == 429:
            refused = resp
    holder.join()
    assert refused is not None, "no query was refused while the only slot was taken"
    assert "concurrent" in mlflow_error(refused, 429, "REQUEST_LIMIT_EXCEEDED")["message"]
    mlflow_error(answers[0], 400, "INVALID_PARAMETER_VALUE")  # the holder stopped at the time cap
    assert http.post("/api/sql", json={"query": "SELECT 1"}).status_code == 200
