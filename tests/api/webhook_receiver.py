"""A webhook receiver on loopback, written from MLflow's webhook documentation: it checks the
``X-MLflow-Signature`` of each delivery (HMAC-SHA256 of ``"{delivery_id}.{timestamp}.{body}"``,
base64, prefixed ``v1,``) and refuses timestamps older than five minutes.

``answers`` scripts its replies: a list of statuses (or ``"hang"``) used in turn, then 200; a 503
says ``Retry-After: 1`` and a 302 points to ``redirect_to``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_AGE_S = 300


def verify_signature(secret: str, delivery_id: str, timestamp: str, body: str, signature: str) -> bool:
    if not signature.startswith("v1,"):
        return False
    if abs(time.time() - int(timestamp)) > MAX_AGE_S:
        return False
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256)
    return hmac.compare_digest(signature[3:], base64.b64encode(mac.digest()).decode())


@dataclass
class Delivery:
    delivery_id: str
    timestamp: str
    signature: str | None
    payload: dict
    signed: bool  # the signature verified with the receiver's secret

    @property
    def kind(self) -> str:
        return f"{self.payload['entity']}.{self.payload['action']}"


class Receiver:
    def __init__(self, secret: str | None = None, port: int = 0):
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self.answers: list = []
        self.redirect_to: str | None = None  # the Location of a 302 answer
        self.requests = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with receiver._lock:
                    receiver.requests += 1
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "hang":
                    receiver._release.wait(60)
                    return
                delivery_id = self.headers.get("X-MLflow-Delivery-Id", "")
                timestamp = self.headers.get("X-MLflow-Timestamp", "0")
                signature = self.headers.get("X-MLflow-Signature")
                signed = bool(
                    receiver.secret
                    and signature
                    and verify_signature(receiver.secret, delivery_id, timestamp, body, signature)
                )
                if receiver.secret and not signed:
                    answer = 401
                if answer == 200:
                    with receiver._cond:
                        receiver.deliveries.append(
                            Delivery(delivery_id, timestamp, signature, json.loads(body), signed)
                        )
                        receiver._cond.notify_all()
                self.send_response(answer)
                if answer == 503:
                    self.send_header("Retry-After", "1")
                if answer == 302 and receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answer {answer}".encode())

        return Handler

    def wait_for(self, count: int, timeout: float = 60) -> list[Delivery]:
        """At least ``count`` deliveries (fails the test after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.deliveries)} deliveries of {count} after {timeout} s"
                self._cond.wait(left)
            return list(self.deliveries)

    def of_kind(self, kind: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.kind == kind]

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
