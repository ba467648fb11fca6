"""Connections that send nothing, stall in their headers or idle after an answer are closed.

Raw sockets on loopback against a server with short deadlines; each wait is bounded by the
socket's own timeout, so a server that never closes fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.api.conftest import ServerProcess

pytestmark = pytest.mark.e2e

WAIT_S = 30  # bounds a hang; the server's deadlines below are 1 s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("connections")
    proc = ServerProcess(
        str(workdir / "data"), workdir, args=("--header-timeout", "1", "--keep-alive", "1")
    ).start()
    yield proc
    assert proc.stop() == 0, proc.read_log()


def connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:  # closed while our unread bytes were in flight: a reset, not a FIN
        pass
    return received


def test_a_connection_that_sends_nothing_is_closed(server):
    with connect(server) as sock:
        assert closed_by_server(sock) == b""


def test_a_connection_stalled_in_its_headers_is_closed(server):
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert closed_by_server(sock) == b""


def test_headers_trickled_byte_by_byte_get_no_more_time(server):
    """Slowloris: each byte arrives before any idle timer would fire; the deadline is not extended."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n\r\n"
    with connect(server) as sock:
        sent = 0
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < len(request) or b"200 OK" not in closed_by_server(sock)


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(server):
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = closed_by_server(sock)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"OK")


def test_requests_that_arrive_in_time_are_served(server):
    with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
        for _ in range(3):
            assert client.get("/health").text == "OK"
