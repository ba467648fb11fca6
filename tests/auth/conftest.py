"""A real ``trackledger server --auth`` whose first admin was made offline by the CLI, real
mlflow clients signed in as different users (their own environment variables), raw HTTP."""

from __future__ import annotations

import os
from contextlib import contextmanager

import httpx
import pytest

from tests.api.conftest import ServerProcess, trackledger

ADMIN = ("admin", "admin-password-1")
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-1")
CAROL = ("carol", "carol-password-1")
AUTH_API = "/api/3.0/mlflow/users/permissions"


@contextmanager
def signed_in(user: tuple[str, str] | None = None, token: str | None = None):
    """The mlflow client's credentials (it reads them from the environment at each request)."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
    saved = {name: os.environ.pop(name, None) for name in names}
    if user:
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def create_admin(workdir, store: str) -> None:
    secret = workdir / "admin-password"
    secret.write_text(ADMIN[1] + "\n")
    done = trackledger(
        "users", "create", ADMIN[0], "--admin", "--password-file", str(secret), "--store", store
    )
    assert done.returncode == 0, done.stderr


def start_auth_server(workdir, users: tuple[tuple[str, str], ...] = ()) -> ServerProcess:
    """``trackledger server --auth`` on a new store in ``workdir`` whose admin the CLI made offline,
    with ``users`` (name, password) created by that admin."""
    store = str(workdir / "data")
    create_admin(workdir, store)
    server = ServerProcess(store, workdir, args=("--auth",)).start()
    with http_as(server, ADMIN) as admin:
        for username, password in users:
            created = admin.post(
                "/api/2.0/mlflow/users/create", json={"username": username, "password": password}
            )
            assert created.status_code == 200, created.text
    return server


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    proc = start_auth_server(tmp_path_factory.mktemp("auth-server"))
    yield proc
    if proc.proc.poll() is None:
        assert proc.stop() == 0, proc.read_log()


def http_as(server, user: tuple[str, str] | None) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, auth=user)


@pytest.fixture(scope="module")
def admin_http(auth_server):
    with http_as(auth_server, ADMIN) as client:
        yield client


@pytest.fixture(scope="module")
def users(auth_server, admin_http):
    """alice, bob and carol, created by the admin through MLflow's AuthServiceClient."""
    from mlflow.server.auth.client import AuthServiceClient

    client = AuthServiceClient(auth_server.url)
    with signed_in(ADMIN):
        for username, password in (ALICE, BOB, CAROL):
            client.create_user(username, password)
    return client


def event_count(admin_http) -> int:
    return admin_http.post("/api/sql", json={"query": "SELECT count(*) FROM events"}).json()["rows"][0][0]
