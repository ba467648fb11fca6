"""What a user may see: searches filtered inside the query (paging stays right), /api/sql over
snapshots of only their rows (sandbox escapes included), the event history, artifacts of a hidden
run, and the web page."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import RestException

from tests.api.conftest import API, ledger_events, mlflow_error
from tests.auth.conftest import ADMIN, ALICE, BOB, CAROL, http_as, signed_in

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

pytestmark = pytest.mark.e2e  # a server process


@pytest.fixture(scope="module")
def hidden(auth_server, users):
    """alice's experiment (a run with a param, a metric, a tag, a dataset, an artifact, a logged
    model, a registered model version) on which carol has NO_PERMISSIONS; carol's own two runs."""
    client = MlflowClient(auth_server.url)
    with signed_in(ALICE):
        experiment_id = client.create_experiment("alice-secret")
        run = client.create_run(experiment_id)
        run_id = run.info.run_id
        client.log_param(run_id, "secret_param", "alice-value")
        client.log_metric(run_id, "secret_metric", 42.0)
        client.set_tag(run_id, "secret_tag", "alice-tag")
        model = client.create_logged_model(experiment_id, source_run_id=run_id, name="alice-lm")
        client.create_registered_model("alice-registered")
        client.create_model_version("alice-registered", f"runs:/{run_id}/model", run_id=run_id)
    with http_as(auth_server, ALICE) as alice:
        path = f"{experiment_id}/{run_id}/artifacts/secret.txt"
        assert alice.put(f"{ARTIFACTS}/{path}", content=b"alice-artifact").status_code == 200
    with signed_in(ADMIN):
        users.grant_user_permission("carol", "experiment", experiment_id, "NO_PERMISSIONS")
        users.grant_user_permission("carol", "registered_model", "alice-registered", "NO_PERMISSIONS")
    with signed_in(CAROL):
        own = client.create_experiment("carol-own")
        carol_runs = [client.create_run(own).info.run_id for _ in range(2)]
    return experiment_id, run_id, model.model_id, own, carol_runs


def _forbidden(resp) -> None:
    mlflow_error(resp, 403, "PERMISSION_DENIED")


def _denied(call) -> None:
    with pytest.raises(RestException) as caught:
        call()
    assert caught.value.error_code == "PERMISSION_DENIED", caught.value


def test_searches_show_only_what_carol_may_read_with_right_paging(auth_server, hidden):
    experiment_id, run_id, _model_id, own, carol_runs = hidden
    client = MlflowClient(auth_server.url)
    with signed_in(CAROL):
        names = {e.name for e in client.search_experiments(view_type=ViewType.ALL)}
        assert "alice-secret" not in names and "carol-own" in names
        found = client.search_runs([experiment_id, own])
        assert sorted(r.info.run_id for r in found) == sorted(carol_runs)
        first = client.search_runs([experiment_id, own], max_results=1)
        assert len(first) == 1 and first.token  # a full page of readable runs, and a next one
        second = client.search_runs([experiment_id, own], max_results=1, page_token=first.token)
        assert {first[0].info.run_id, second[0].info.run_id} == set(carol_runs) and not second.token
        assert client.search_runs([experiment_id]) == []
        assert client.search_logged_models([experiment_id]) == []
        assert "alice-registered" not in {m.name for m in client.search_registered_models()}
        assert client.search_model_versions("name = 'alice-registered'") == []
        _denied(lambda: client.get_run(run_id))
        _denied(lambda: client.get_experiment(experiment_id))
        _denied(lambda: client.get_experiment_by_name("alice-secret"))
        _denied(lambda: client.get_metric_history(run_id, "secret_metric"))
        _denied(lambda: client.get_registered_model("alice-registered"))
        _denied(lambda: client.get_logged_model(hidden[2]))
    with signed_in(BOB):  # READ by default: bob sees it all
        assert {r.info.run_id for r in client.search_runs([experiment_id])} == {run_id}


SECRETS = ("alice-value", "alice-tag", "secret_metric", "secret_param", "alice-secret", "alice-registered")
ESCAPES = [
    "SELECT * FROM {table}",
    "FROM {table}",
    "SELECT * FROM main.{table}",
    'SELECT * FROM "projections".main.{table}',
    "SELECT * FROM memory.main.{table}",
    "SELECT * FROM query_table('{table}')",
    "WITH x AS (SELECT * FROM {table}) SELECT * FROM x",
    "SELECT * FROM (SELECT * FROM {table}) UNION ALL SELECT * FROM {table}",
]
TABLES = [
    "experiments", "experiment_tags", "runs", "params", "run_tags", "metrics", "latest_metrics",
    "dataset_inputs", "logged_models", "logged_model_tags", "logged_model_params", "model_versions",
    "registered_models", "registered_model_tags", "registered_model_aliases", "artifacts", "events",
    "permissions", "users", "tokens", "credentials", "account_events",
]  # fmt: skip


@pytest.mark.parametrize("table", TABLES)
def test_carol_sql_returns_no_row_of_the_hidden_experiment_from_any_table(auth_server, hidden, table):
    experiment_id, run_id, model_id, _own, _runs = hidden
    with http_as(auth_server, CAROL) as carol:
        for template in ESCAPES:
            resp = carol.post("/api/sql", json={"query": template.format(table=table)})
            text = resp.text
            assert run_id not in text and model_id not in text, (template, text[:300])
            assert not any(secret in text for secret in SECRETS), (template, text[:300])
            assert "scrypt$" not in text
            if resp.status_code == 200 and table in ("experiments", "runs", "events"):
                column = resp.json()["columns"].index("experiment_id")
                assert experiment_id not in [row[column] for row in resp.json()["rows"]]


def test_carol_sql_catalog_and_file_escapes_show_nothing_hidden(auth_server, hidden):
    _experiment_id, run_id, _model_id, _own, _runs = hidden
    queries = [
        "SELECT * FROM duckdb_tables()",
        "SELECT * FROM duckdb_views()",
        "SELECT * FROM duckdb_databases()",
        "SELECT * FROM read_parquet('**/*.parquet')",
        "SELECT * FROM read_csv_auto('data/.state/wal/*')",
        "SELECT * FROM glob('*')",
        "ATTACH 'data/.state/projections.duckdb' AS p",
        "SELECT 1; SELECT * FROM runs",
    ]
    with http_as(auth_server, CAROL) as carol:
        for query in queries:
            text = carol.post("/api/sql", json={"query": query}).text
            assert run_id not in text and "alice" not in text, (query, text[:300])
    with http_as(auth_server, ADMIN) as admin:  # an admin sees all of it (but never a hash)
        rows = admin.post("/api/sql", json={"query": "SELECT run_id FROM runs"}).json()["rows"]
        assert [run_id] in rows
        mlflow_error(
            admin.post("/api/sql", json={"query": "SELECT * FROM credentials"}),
            400,
            "INVALID_PARAMETER_VALUE",
        )


def test_carol_event_history_skips_the_hidden_experiment(auth_server, hidden):
    experiment_id, run_id, _model_id, own, _runs = hidden
    with http_as(auth_server, CAROL) as carol:
        events = ledger_events(carol)
        assert events and all(e.get("experiment_id") for e in events)
        assert experiment_id not in {e["experiment_id"] for e in events}
        assert own in {e["experiment_id"] for e in events}
        assert ledger_events(carol, run_id=run_id) == []
        assert not any(e["type"].startswith(("user_", "token_")) for e in events)


def test_artifacts_of_a_hidden_run_are_403_up_and_down(auth_server, hidden):
    experiment_id, run_id, model_id, own, carol_runs = hidden
    path = f"{experiment_id}/{run_id}/artifacts/secret.txt"
    with http_as(auth_server, CAROL) as carol:
        mlflow_error(carol.get(f"{ARTIFACTS}/{path}"), 403, "PERMISSION_DENIED")
        mlflow_error(
            carol.put(f"{ARTIFACTS}/{experiment_id}/{run_id}/artifacts/x.txt", content=b"x"),
            403,
            "PERMISSION_DENIED",
        )
        mlflow_error(carol.delete(f"{ARTIFACTS}/{path}"), 403, "PERMISSION_DENIED")
        for listed in (f"{experiment_id}/{run_id}/artifacts", experiment_id, "", "."):
            mlflow_error(carol.get(ARTIFACTS, params={"path": listed}), 403, "PERMISSION_DENIED")
        mlflow_error(
            carol.get(f"{ARTIFACTS}/{experiment_id}/models/{model_id}/artifacts/MLmodel"),
            403,
            "PERMISSION_DENIED",
        )
        # Her own experiment's folder holding alice's run id: the run is not in it.
        mlflow_error(carol.get(f"{ARTIFACTS}/{own}/{run_id}/artifacts/secret.txt"), 403, "PERMISSION_DENIED")
        for sneaky in (f"{own}/../{path}", f"{own}/%2e%2e/{path}", f"/{path}", f"{own}/..%2F{path}"):
            resp = carol.get(f"{ARTIFACTS}/{sneaky}")
            assert resp.status_code in (400, 403, 404) and b"alice-artifact" not in resp.content, sneaky
        own_path = f"{own}/{carol_runs[0]}/artifacts/mine.txt"
        assert carol.put(f"{ARTIFACTS}/{own_path}", content=b"mine").status_code == 200
        assert carol.get(f"{ARTIFACTS}/{own_path}").content == b"mine"
    with http_as(auth_server, BOB) as bob:  # READ: down, not up
        assert bob.get(f"{ARTIFACTS}/{path}").content == b"alice-artifact"
        mlflow_error(bob.put(f"{ARTIFACTS}/{path}", content=b"overwrite"), 403, "PERMISSION_DENIED")
    with http_as(auth_server, ALICE) as alice:
        assert alice.get(f"{ARTIFACTS}/{path}").content == b"alice-artifact"


def test_unknown_routes_and_webhooks_are_for_admins(auth_server, hidden):
    with http_as(auth_server, CAROL) as carol:
        mlflow_error(carol.get(f"{API}/no-such-route"), 403, "PERMISSION_DENIED")
        mlflow_error(carol.get(f"{API}/webhooks"), 403, "PERMISSION_DENIED")
        mlflow_error(carol.get("/api/ledger/webhooks"), 403, "PERMISSION_DENIED")
        mlflow_error(carol.post("/api/ledger/import/known", json={"ids": []}), 403, "PERMISSION_DENIED")
        forged = carol.post(
            "/api/ledger/import", content=b"", headers={"content-type": "application/msgpack"}
        )
        mlflow_error(forged, 403, "PERMISSION_DENIED")
    with http_as(auth_server, ADMIN) as admin:
        mlflow_error(admin.get(f"{API}/no-such-route"), 404, "ENDPOINT_NOT_FOUND")
        assert admin.get(f"{API}/webhooks").status_code == 200
        assert admin.get("/api/ledger/webhooks").status_code == 200


def test_carol_event_stream_skips_the_hidden_experiment(auth_server, hidden):
    experiment_id, run_id, _model_id, own, _runs = hidden
    seen = []
    with http_as(auth_server, CAROL) as carol:
        params = {"after": 0, "heartbeat": 1}
        with carol.stream("GET", "/api/ledger/stream", params=params) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    seen.append(line)
                if line == ": heartbeat":  # everything so far was sent
                    break
    text = "\n".join(seen)
    assert f'"experiment_id":"{own}"' in text
    assert f'"experiment_id":"{experiment_id}"' not in text and run_id not in text and "scrypt$" not in text


def test_a_hidden_runs_files_are_403_through_the_routes_that_name_an_owner(auth_server, hidden):
    """MLflow's tracking-API and UI artifact routes name a run, a logged model or a model version:
    each checks the experiment the files are in, so none is a way around the proxy's checks."""
    experiment_id, run_id, model_id, own, carol_runs = hidden
    ajax = "/ajax-api/2.0/mlflow"
    with http_as(auth_server, CAROL) as carol:
        for resp in (
            carol.get("/get-artifact", params={"run_id": run_id, "path": "secret.txt"}),
            carol.get(f"{API}/artifacts/list", params={"run_id": run_id}),
            carol.post(f"{ajax}/upload-artifact", params={"run_uuid": run_id, "path": "x.txt"}, content=b"x"),
            carol.get(f"{ajax}/logged-models/{model_id}/artifacts/directories"),
            carol.get(
                f"{ajax}/logged-models/{model_id}/artifacts/files", params={"artifact_file_path": "MLmodel"}
            ),
            carol.post(
                f"{API}/logged-models/{model_id}/params", json={"params": [{"key": "k", "value": "v"}]}
            ),
            carol.get(
                "/model-versions/get-artifact",
                params={"name": "alice-registered", "version": "1", "path": "x"},
            ),
            carol.get(
                f"{ajax}/metrics/get-history-bulk",
                params={"run_id": [carol_runs[0], run_id], "metric_key": "m"},
            ),
            carol.post(f"{ajax}/experiments/search-datasets", json={"experiment_ids": [own, experiment_id]}),
        ):
            assert b"alice" not in resp.content
            mlflow_error(resp, 403, "PERMISSION_DENIED")
        ok = carol.post(
            f"{ajax}/upload-artifact", params={"run_uuid": carol_runs[0], "path": "m.txt"}, content=b"m"
        )
        assert ok.status_code == 200, ok.text
        assert carol.get("/get-artifact", params={"run_id": carol_runs[0], "path": "m.txt"}).content == b"m"
    with http_as(auth_server, BOB) as bob:  # READ on alice's experiment: down, not up
        assert (
            bob.get("/get-artifact", params={"run_id": run_id, "path": "secret.txt"}).content
            == b"alice-artifact"
        )
        up = bob.post(f"{ajax}/upload-artifact", params={"run_uuid": run_id, "path": "y.txt"}, content=b"y")
        mlflow_error(up, 403, "PERMISSION_DENIED")


def test_a_model_version_cannot_name_a_hidden_logged_model(auth_server, hidden, admin_http):
    """A version's files are served to the readers of its registered model: making one of a logged
    model needs READ on that model's experiment, as making one of a run does."""
    experiment_id, _run_id, model_id, _own, _runs = hidden
    with http_as(auth_server, ALICE) as alice:
        path = f"{experiment_id}/models/{model_id}/artifacts/MLmodel"
        assert alice.put(f"{ARTIFACTS}/{path}", content=b"alice-model-file").status_code == 200
    with http_as(auth_server, CAROL) as carol:
        assert carol.post(f"{API}/registered-models/create", json={"name": "carol-registered"}).is_success
        before = len(ledger_events(admin_http))
        made = carol.post(
            f"{API}/model-versions/create",
            json={"name": "carol-registered", "source": f"models:/{model_id}", "model_id": model_id},
        )
        _forbidden(made)
        assert len(ledger_events(admin_http)) == before
        served = carol.get(
            "/model-versions/get-artifact",
            params={"name": "carol-registered", "version": "1", "path": "MLmodel"},
        )
        assert b"alice-model-file" not in served.content


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("GET", "/api/3.0/mlflow/users/permissions/get", {}),
        ("POST", "/api/3.0/mlflow/users/permissions/grant", {"permission": "READ"}),
        ("POST", "/api/3.0/mlflow/users/permissions/revoke", {}),
    ],
)
def test_permission_routes_do_not_tell_a_non_manager_which_users_exist(
    auth_server, hidden, method, path, extra
):
    """Without MANAGE on the resource, a known and an unknown user name get the same 403."""
    experiment_id = hidden[0]
    with http_as(auth_server, CAROL) as carol:
        for username in ("bob", "no-such-user"):
            fields = {
                "username": username,
                "resource_type": "experiment",
                "resource_id": experiment_id,
                **extra,
            }
            resp = carol.get(path, params=fields) if method == "GET" else carol.post(path, json=fields)
            _forbidden(resp)


def test_a_zero_padded_experiment_id_is_checked_as_the_experiment_it_names(auth_server, hidden):
    """Handlers read "007" as experiment 7, so the permission check does too."""
    experiment_id = hidden[0]
    padded = "00" + experiment_id
    with http_as(auth_server, CAROL) as carol:
        for resp in (
            carol.get(f"{API}/experiments/get", params={"experiment_id": padded}),
            carol.post(f"{API}/experiments/search-datasets", json={"experiment_ids": [padded]}),
            carol.post(
                f"{API}/experiments/set-experiment-tag",
                json={"experiment_id": padded, "key": "k", "value": "v"},
            ),
        ):
            assert b"alice" not in resp.content
            _forbidden(resp)
