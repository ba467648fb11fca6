"""One HTTP POST to a webhook's URL, signed as MLflow signs it, guarded against SSRF.

http(s) only; redirects are never followed; the peer address of each new connection is checked
right after connect, before any byte is sent (so DNS rebinding gains nothing): loopback, private,
link-local and other non-global addresses are refused unless private addresses are allowed.
Connect and read timeouts bound every attempt; no proxy from the environment is used.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from trackledger.api.errors import MlflowError, invalid
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

RESPONSE_BODY_LIMIT = 2048  # characters of a receiver's answer kept in the history


class AddressRefused(Exception):
    """The URL's host is an address webhooks may not reach (not an urllib3 error: never retried)."""


@dataclass(frozen=True)
class Outcome:
    status: int | None = None
    body: str = ""
    latency_ms: int = 0
    error: str | None = None
    retry_after_s: float | None = None
    refused: bool = False  # an address webhooks may not reach: retrying cannot help

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's ``X-MLflow-Signature``: ``v1,<base64 HMAC-SHA256(secret, "{id}.{ts}.{body}")>``."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(delivery_id: str, body: str, secret: str | None) -> dict[str, str]:
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "trackledger-webhooks",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
    }
    if secret:
        headers["X-MLflow-Signature"] = signature(secret, delivery_id, timestamp, body)
    return headers


def check_url(url: str, allow_private: bool) -> str:
    """A webhook URL as given, or a 400 saying what is wrong with it. A host given as an address
    is checked here too; a name is checked when it is connected to."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise invalid(f"Invalid webhook URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise invalid(f"Invalid webhook URL {url!r}: the scheme must be http or https")
    if not parts.hostname:
        raise invalid(f"Invalid webhook URL {url!r}: it has no host")
    if not allow_private:
        try:
            refusal = _refusal(ipaddress.ip_address(parts.hostname))
        except ValueError:
            refusal = "localhost is not a public address" if parts.hostname == "localhost" else None
        if refusal:
            raise invalid(f"Invalid webhook URL {url!r}: {refusal} (the server refuses private addresses)")
    return url


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return None if ip.is_global else f"{ip} is not a public address"


def _check_peer(sock: socket.socket) -> None:
    try:
        refusal = _refusal(ipaddress.ip_address(sock.getpeername()[0]))
    except (OSError, ValueError) as exc:
        refusal = f"the connection's peer address is unknown ({exc})"
    if refusal:
        sock.close()
        raise AddressRefused(f"connection refused by the server: {refusal}")


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:  # the TCP socket, before the TLS handshake
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class Sender:
    def __init__(self, *, allow_private: bool, connect_timeout_s: float, read_timeout_s: float):
        self.allow_private = allow_private
        self._timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
        self._pools = urllib3.PoolManager(num_pools=32, maxsize=4)
        if not allow_private:
            self._pools.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}

    def post(self, url: str, body: str, headers: dict[str, str]) -> Outcome:
        started = time.monotonic()
        try:
            check_url(url, self.allow_private)
            response = self._pools.urlopen(
                "POST",
                url,
                body=body.encode(),
                headers=headers,
                redirect=False,
                retries=False,
                timeout=self._timeout,
                preload_content=False,
            )
        except AddressRefused as exc:
            return Outcome(latency_ms=_ms(started), error=str(exc), refused=True)
        except MlflowError as exc:  # check_url: the URL itself is refused
            return Outcome(latency_ms=_ms(started), error=exc.message, refused=True)
        except Exception as exc:  # any failure to get an answer is this attempt's outcome
            error = getattr(exc, "reason", None) or exc
            return Outcome(latency_ms=_ms(started), error=f"{type(error).__name__}: {error}")
        try:
            text = response.read(RESPONSE_BODY_LIMIT * 4, decode_content=True).decode("utf-8", "replace")
        except Exception as exc:
            text = f"(the answer's body could not be read: {type(exc).__name__})"
        finally:
            response.close()
        return Outcome(
            status=response.status,
            body=text[:RESPONSE_BODY_LIMIT],
            latency_ms=_ms(started),
            retry_after_s=_retry_after(response.headers.get("Retry-After")),
        )

    def close(self) -> None:
        self._pools.clear()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo else None
