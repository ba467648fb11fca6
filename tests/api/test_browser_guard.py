"""A browser cannot be made to act on the server by another site: cross-site writes are refused
(Origin, Sec-Fetch-Site, the session cookie), JSON routes read only bodies declared JSON, and a
request for a Host that is not one of the server's names (DNS rebinding) is refused."""

from __future__ import annotations

import httpx
import pytest
from trackledger.api.browser_guard import allowed_host_patterns, is_same_origin, split_host
from trackledger.api.settings import Settings, host_list

from tests.api.conftest import API, ServerProcess, in_process, ledger_events, mlflow_error

CREATE = f"{API}/experiments/create"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with in_process(tmp_path_factory.mktemp("guard") / "data") as client:
        yield client


def _appended(client) -> int:
    return len(ledger_events(client))


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
        {"Origin": "http://evil.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Origin": "http://127.0.0.1:8080", "Content-Type": "application/json"},  # another port
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"},
        {"Cookie": "trackledger_session=anything", "Content-Type": "application/json"},  # no Origin
    ],
    ids=["form", "json", "null", "other-port", "sec-fetch-cross", "sec-fetch-same-site", "cookie-no-origin"],
)
def test_a_browser_write_from_another_site_is_refused_before_anything_is_appended(app, headers):
    before = _appended(app)
    refused = app.post(CREATE, content=b'{"name": "csrf"}', headers=headers)
    body = mlflow_error(refused, 403, "PERMISSION_DENIED")
    assert "Cross-site write refused" in body["message"]
    assert _appended(app) == before
    assert app.get(f"{API}/experiments/get-by-name", params={"experiment_name": "csrf"}).status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_state_changing_method_is_checked(app, method):
    refused = app.request(
        method, f"{API}/registered-models/update", headers={"Origin": "http://evil.example"}
    )
    mlflow_error(refused, 403, "PERMISSION_DENIED")


def test_a_cross_site_read_is_not_a_write_and_is_answered(app):
    answer = app.get(f"{API}/experiments/search", headers={"Origin": "http://evil.example"})
    assert answer.status_code == 200


def test_writes_from_this_origin_and_from_programs_are_accepted(app):
    own = app.post(
        CREATE,
        json={"name": "from-the-page"},
        headers={"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"},
    )
    assert own.status_code == 200, own.text
    program = app.post(CREATE, json={"name": "from-a-script"})  # no Origin: the mlflow client, curl
    assert program.status_code == 200, program.text


def test_a_text_plain_body_is_never_read_as_json(app):
    """The body a page on another site can send without a preflight, even from a browser that
    sends no Origin."""
    before = _appended(app)
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        refused = app.post(CREATE, content=b'{"name": "plain"}', headers={"Content-Type": content_type})
        body = mlflow_error(refused, 400, "INVALID_PARAMETER_VALUE")
        assert "Content-Type must be one of ['application/json']" in body["message"]
    sql = app.post("/api/sql", content=b'{"query": "select 1"}', headers={"Content-Type": "text/plain"})
    mlflow_error(sql, 400, "INVALID_PARAMETER_VALUE")
    assert _appended(app) == before
    charset = app.post(
        CREATE, content=b'{"name": "utf8"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 200, charset.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "127.0.0.1.evil.example", "10.0.0.5"])
def test_a_rebinding_host_is_refused(app, host):
    before = _appended(app)
    refused = app.post(CREATE, json={"name": f"rebound-{host}"}, headers={"Host": host})
    body = mlflow_error(refused, 403, "PERMISSION_DENIED")
    assert "--allowed-hosts" in body["message"] and host in body["message"]
    assert _appended(app) == before
    mlflow_error(app.get(f"{API}/experiments/search", headers={"Host": host}), 403, "PERMISSION_DENIED")
    assert app.get("/", headers={"Host": host, "Accept": "text/html"}).status_code == 403


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:5000", "127.0.0.1:1234", "[::1]", "[::1]:5000", "LOCALHOST"]
)
def test_loopback_names_are_allowed_on_any_port(app, host):
    assert app.get(f"{API}/experiments/search", headers={"Host": host}).status_code == 200


def test_health_and_version_answer_any_host(app):
    assert app.get("/health", headers={"Host": "evil.example"}).text == "OK"
    assert app.get("/version", headers={"Host": "evil.example"}).status_code == 200


def test_allowed_hosts_and_the_bound_host_are_honoured(tmp_path):
    settings = {
        "host": "tracking.lan",
        "allowed_hosts": ("mlflow.corp.example", "*.lab.example", "10.1.2.3:8443"),
    }
    with in_process(tmp_path / "data", **settings) as client:

        def status(host: str) -> int:
            return client.get(f"{API}/experiments/search", headers={"Host": host}).status_code

        assert status("tracking.lan:5000") == 200  # the name --host binds
        assert status("mlflow.corp.example") == 200
        assert status("mlflow.corp.example:443") == 200  # a name without a port: any port
        assert status("gpu1.lab.example:5000") == 200
        assert status("10.1.2.3:8443") == 200
        assert status("10.1.2.3:5000") == 403  # a port given: only that one
        assert status("lab.example") == 403  # "*." needs a label before it
        assert status("corp.example") == 403
        assert status("localhost:5000") == 200  # loopback stays allowed


def test_a_star_allows_any_host(tmp_path):
    with in_process(tmp_path / "data", allowed_hosts=("*",)) as client:
        assert (
            client.get(f"{API}/experiments/search", headers={"Host": "anything.example"}).status_code == 200
        )


def test_host_patterns_parse_as_documented():
    assert split_host("[::1]:5000") == ("[::1]", "5000")
    assert split_host("Example.COM") == ("example.com", None)
    assert split_host("a.example:*") == ("a.example", "*")
    assert host_list(" a.example, ,10.0.*:5000 ") == ("a.example", "10.0.*:5000")
    with pytest.raises(ValueError, match="not a host name"):
        host_list("http://a.example/")
    assert allowed_host_patterns("0.0.0.0", ()) is not None  # a wildcard bind adds no name
    assert [p.text for p in allowed_host_patterns("0.0.0.0", ())] == ["localhost", "127.0.0.1", "[::1]"]
    assert [p.text for p in allowed_host_patterns("::1", ())][-1] == "[::1]"
    assert allowed_host_patterns("127.0.0.1", ("a", "*")) is None
    assert is_same_origin("https://mlflow.corp.example", "mlflow.corp.example")  # behind a TLS proxy
    assert is_same_origin("http://localhost:5000", "localhost:5000")
    assert not is_same_origin("http://localhost:5001", "localhost:5000")
    assert not is_same_origin("null", "localhost:5000")


def test_the_allowed_hosts_setting_comes_from_the_flag_or_the_environment():
    import argparse

    from trackledger.api.settings import add_options

    parser = argparse.ArgumentParser()
    add_options(parser, "server")
    flag = Settings.from_args("server", parser.parse_args(["--allowed-hosts", "a.example,b.example"]), {})
    assert flag.allowed_hosts == ("a.example", "b.example")
    env = Settings.from_args("server", parser.parse_args([]), {"TRACKLEDGER_ALLOWED_HOSTS": "c.example"})
    assert env.allowed_hosts == ("c.example",)
    with pytest.raises(ValueError, match="TRACKLEDGER_ALLOWED_HOSTS"):
        Settings.from_args("server", parser.parse_args([]), {"TRACKLEDGER_ALLOWED_HOSTS": "a b"})


@pytest.mark.e2e
def test_the_server_refuses_a_rebinding_host_and_a_cross_site_write(tmp_path):
    server = ServerProcess(
        str(tmp_path / "data"), tmp_path, args=("--allowed-hosts", "mlflow.corp.example")
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            before = len(ledger_events(http))
            rebound = http.post(CREATE, json={"name": "rebound"}, headers={"Host": "evil.example"})
            mlflow_error(rebound, 403, "PERMISSION_DENIED")
            form = http.post(
                CREATE, data={"name": "csrf"}, headers={"Origin": "http://evil.example"}
            )  # what a form on another site sends
            mlflow_error(form, 403, "PERMISSION_DENIED")
            fetch_site = http.post(CREATE, json={"name": "csrf2"}, headers={"Sec-Fetch-Site": "cross-site"})
            mlflow_error(fetch_site, 403, "PERMISSION_DENIED")
            plain = http.post(CREATE, content=b'{"name": "plain"}', headers={"Content-Type": "text/plain"})
            mlflow_error(plain, 400, "INVALID_PARAMETER_VALUE")
            assert len(ledger_events(http)) == before
            named = http.post(CREATE, json={"name": "named"}, headers={"Host": "mlflow.corp.example:5000"})
            assert named.status_code == 200, named.text
            assert http.get("/health", headers={"Host": "evil.example"}).text == "OK"
    finally:
        assert server.stop() == 0, server.read_log()
