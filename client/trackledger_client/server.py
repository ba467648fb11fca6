"""Requests to the server that never retry by themselves (the shipper decides when to try again),
and one artifact upload through its proxy."""

from __future__ import annotations

import json
from collections.abc import Callable

from mlflow.exceptions import MlflowException, RestException
from mlflow.utils.rest_utils import http_request


class Unavailable(Exception):
    """The server could not be reached, or answered 5xx or 429: try again later. ``sent``: False
    when the request certainly never reached the server (no connection was made)."""

    def __init__(self, message: str, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class Server:
    """Requests to the server that never retry by themselves: the shipper decides."""

    def __init__(self, host_creds: Callable, timeout_s: float) -> None:
        self.host_creds = host_creds
        self.timeout_s = timeout_s

    def request(self, method: str, endpoint: str, body=None, key: str | None = None, data=None) -> dict:
        headers = {"Idempotency-Key": key} if key else None
        kwargs = {"params": body} if method == "GET" else {"json": body}
        if data is not None:
            kwargs = {"data": data}
        try:
            response = http_request(
                self.host_creds(),
                endpoint,
                method,
                max_retries=0,
                timeout=self.timeout_s,
                extra_headers=headers,
                raise_on_status=False,
                **kwargs,
            )
        except MlflowException as e:
            # mlflow wraps the requests error without a cause; it is the context.
            refused = "Failed to establish a new connection" in str(e.__context__ or e)
            raise Unavailable(str(e), sent=not refused) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise Unavailable(f"{method} {endpoint}: HTTP {response.status_code}")
        if response.status_code != 200:
            try:
                raise RestException(json.loads(response.text))
            except (ValueError, TypeError):
                raise MlflowException(
                    f"{method} {endpoint}: HTTP {response.status_code}: {response.text[:200]}"
                ) from None
        try:
            return json.loads(response.text) if response.text else {}
        except ValueError:
            return {}  # a plain-text answer (/health, an artifact upload)


def upload(server: Server, location: str, path: str, source, key: str | None) -> None:
    """One file to an artifact location: through the server's proxy for ``mlflow-artifacts:``
    (with an Idempotency-Key, without retries), with mlflow's own repository otherwise."""
    if location.startswith("mlflow-artifacts:"):
        base = location.removeprefix("mlflow-artifacts:").lstrip("/")
        endpoint = f"/api/2.0/mlflow-artifacts/artifacts/{base}/{path}"
        with open(source, "rb") as f:
            server.request("PUT", endpoint, key=key, data=f)
        return
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    folder = "/".join(path.split("/")[:-1]) or None
    try:
        get_artifact_repository(location).log_artifact(str(source), folder)
    except Exception as e:
        raise Unavailable(f"upload to {location}: {e}") from None


def short(why: str) -> str:
    """The gist of a requests error (its full text names the pool, the URL and the retries)."""
    for gist in ("Connection refused", "timed out", "Name or service not known", "HTTP "):
        if gist in why:
            return why[why.index(gist) :].split(")")[0].split("'")[0]
    return why[:200]
