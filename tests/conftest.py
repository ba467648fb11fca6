"""Fixtures shared by every test package: a real S3-protocol server on loopback.

Also makes pytest leave with its own exit status: pyarrow can abort the interpreter at exit
after Parquet reads (see ``trackledger.api.cli.exit_now``), which would fail a run whose tests all passed.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3 server on a free loopback port, for the whole session.

    Yields the endpoint URL. Credentials are dummies that the server accepts.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the moto server; yields (bucket name, storage_options for s3fs)."""
    import s3fs

    options = {"client_kwargs": {"endpoint_url": s3_server}, "key": "testing", "secret": "testing"}
    name = f"tl-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir(name)
    fs.invalidate_cache()
    yield name, options


def pytest_unconfigure(config):
    """Runs after the summary is printed: exit with pytest's status, skipping C++ destructors."""
    from trackledger.api.cli import exit_now

    status = getattr(config, "_trackledger_exitstatus", None)
    if status is not None:
        exit_now(int(status))


def pytest_sessionfinish(session, exitstatus):
    session.config._trackledger_exitstatus = exitstatus
