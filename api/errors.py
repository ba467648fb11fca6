"""MLflow-style errors: a JSON body ``{"error_code", "message"}`` with a 4xx status.

The mlflow client retries 408, 429 and 5xx for minutes, so every mistake a client can make
must surface as one of these, never as a 5xx.
"""

from __future__ import annotations

import msgspec

STATUS_BY_CODE = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "RESOURCE_LIMIT_EXCEEDED": 413,  # a request body past the server's cap
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INSUFFICIENT_STORAGE": 507,  # a full disk: the mlflow client does not retry it for minutes
}


class MlflowError(Exception):
    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE"):
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.error_code, 400)

    def body(self) -> bytes:
        return msgspec.json.encode({"error_code": self.error_code, "message": self.message})


def invalid(message: str) -> MlflowError:
    return MlflowError(message, "INVALID_PARAMETER_VALUE")


def not_found(message: str) -> MlflowError:
    return MlflowError(message, "RESOURCE_DOES_NOT_EXIST")


def already_exists(message: str) -> MlflowError:
    return MlflowError(message, "RESOURCE_ALREADY_EXISTS")


def missing(name: str) -> MlflowError:
    return invalid(
        f"Missing value for required parameter '{name}'. "
        "See the API docs for more information about request parameters."
    )
