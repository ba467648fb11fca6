"""MLflow's input rules: key names, length limits (truncating where MLflow truncates), batch limits."""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import urllib.parse

from trackledger.api.errors import MlflowError, invalid, missing

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = 1_000_000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_ENTITY_KEY_LENGTH = 250
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_REGISTRY_TAG_VAL_LENGTH = 100_000
MAX_ALIAS_LENGTH = 255
MAX_ARTIFACT_LOCATION_LENGTH = 2048
# Dataset inputs (MLflow's column sizes, which it checks on the way in)
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
# The SQL store clamps infinities to the largest double; we do the same on the way in.
MAX_DOUBLE = 1.7976931348623157e308

_NAME_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_EXPERIMENT_ID_RE = re.compile(r"[0-9]+")
# An integer as text, short enough for int() (which refuses over 4,300 digits).
_INTEGER = re.compile(r"-?[0-9]{1,100}")
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")


def _invalid_value(path: str, value, message: str) -> str:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return f"Invalid value {shown} for parameter '{path}' supplied: {message}"


ACCEPTED_KEYS: set[str] = set()  # keys already accepted: the hot path logs the same few keys again and again


def integer(text: str | None) -> int | None:
    """The integer ``text`` spells, else None: every integer read from text (ids, query strings)
    goes through here, so no text reaches int() unbounded."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    return int(text)


def check_key(name: str | None, path: str = "key") -> str:
    """A metric, param or tag key: MLflow's character set, no path tricks, at most 250 chars."""
    if name in ACCEPTED_KEYS:
        return name
    if name is None:
        raise missing(path)
    if not _NAME_RE.match(name):
        raise invalid(
            _invalid_value(
                path,
                name,
                "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
                " spaces ( ), colon(:) and slashes (/).",
            )
        )
    _resolves_to_itself(path, name)
    if len(name) > MAX_ENTITY_KEY_LENGTH:
        raise invalid(f"'{path}' exceeds the maximum length of {MAX_ENTITY_KEY_LENGTH} characters")
    if len(ACCEPTED_KEYS) > 100_000:
        ACCEPTED_KEYS.clear()
    ACCEPTED_KEYS.add(name)
    return name


def _resolves_to_itself(path: str, name: str) -> None:
    """A name that may become a file name must not resolve to another one."""
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise invalid(
            _invalid_value(
                path,
                name,
                "Names may be treated as files in certain cases, and must not resolve to other names"
                f" when treated as such. This name would resolve to {norm!r}",
            )
        )


def required(request, *names: str) -> None:
    """Each of the request Struct's fields ``names`` is given and not empty."""
    for name in names:
        if getattr(request, name) in (None, ""):
            raise missing(name)


def exceeds(path: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise invalid(f"'{path}' exceeds the maximum length of {limit} characters")


def created_run_tag_key(name: str | None, path: str) -> str:
    """A tag key given at run creation: MLflow checks neither its characters nor its form there."""
    if name is None:
        raise missing(path)
    exceeds(path, name, MAX_ENTITY_KEY_LENGTH)
    return name


def artifact_location(location: str) -> str:
    """An experiment's own artifact location, refused as MLflow refuses it."""
    parsed = urllib.parse.urlparse(location)
    if parsed.fragment or parsed.params:
        raise invalid("'artifact_location' URL can't include fragments or params.")
    if location.startswith("runs:"):
        raise invalid(f"Artifact location cannot be a runs:/ URI. Given: '{location}'")
    if len(location) > MAX_ARTIFACT_LOCATION_LENGTH:
        raise invalid(
            "Invalid artifact path length. The length of the artifact path cannot be greater than "
            f"{MAX_ARTIFACT_LOCATION_LENGTH} characters."
        )
    if not parsed.scheme and not os.path.isabs(location):  # as MLflow: a relative path from the server's
        return os.path.abspath(location)  # working directory (the client then writes there itself)
    return location


def max_results(value: int, at_most: int | None = None) -> int:
    if value < 1:
        raise invalid(
            f"Invalid value {value} for parameter 'max_results' supplied. It must be a positive integer."
        )
    if at_most is not None and value > at_most:
        raise invalid(
            f"Invalid value {value} for parameter 'max_results' supplied. It must be at most {at_most}"
        )
    return value


def param_value(value: str | None) -> str:
    return (value or "")[:MAX_PARAM_VAL_LENGTH]


def tag_value(value: str | None) -> str:
    return (value or "")[:MAX_TAG_VAL_LENGTH]


def metric_value(value: float | None, path: str = "value") -> float:
    if value is None:
        raise missing(path)
    if math.isinf(value):
        return MAX_DOUBLE if value > 0 else -MAX_DOUBLE
    return value


def timestamp(value: int | None, path: str = "timestamp") -> int:
    if value is None:
        raise missing(path)
    if value < 0:
        raise invalid(_invalid_value(path, value, "Timestamp must be a nonnegative long (64-bit integer) "))
    return value


def run_id(value: str | None) -> str:
    if not value:
        raise missing("run_id")
    if not _RUN_ID_RE.match(value):
        raise invalid(f"Invalid value {json.dumps(value)} for parameter 'run_id' supplied.")
    return value


def experiment_id(value: str | None, path: str = "experiment_id") -> str:
    if value is None or value == "":
        raise missing(path)
    text = str(value)
    number = integer(text) if _EXPERIMENT_ID_RE.fullmatch(text) else None
    if number is None:
        raise invalid(f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer.")
    return str(number)


def experiment_name(name: str | None) -> str:
    if not name:
        raise invalid(f"Invalid experiment name: '{name or ''}'")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise invalid(f"'name' exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters")
    return name


def batch_limit(entity: str, limit: int, length: int) -> None:
    if length > limit:
        raise invalid(
            f"A batch logging request can contain at most {limit} {entity}. "
            f"Got {length} {entity}. Please split up {entity} across multiple requests and try again."
        )


def batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    batch_limit("metrics", MAX_METRICS_PER_BATCH, n_metrics)
    batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, n_params)
    batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, n_tags)
    batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, n_metrics + n_params + n_tags)


def batch_too_large(size: int) -> MlflowError:
    """``size``: the declared length, or the bytes read when the cap was passed."""
    return invalid(
        f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, "
        f"got a request of size {size}."
    )


# The model registry ------------------------------------------------------------------


def model_name(name: str | None, path: str = "name") -> str:
    """A registered model's new name (creation or rename), refused as MLflow refuses it."""
    if name is None or name == "":
        raise missing(path)
    if name.strip() == "":  # MLflow's store says so, without its request checks' advice
        raise invalid(f"Missing value for required parameter '{path}'.")
    if "/" in name or ":" in name:
        raise invalid(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    _resolves_to_itself("name", name)
    return name


def model_version(version: str | None) -> int:
    if version is None or version == "":
        raise missing("version")
    number = integer(version)
    if number is None:
        raise invalid(f"Parameter 'version' must be an integer, got '{version}'.")
    return number


def registry_tag_value(value: str | None) -> str:
    value = value or ""
    exceeds("value", value, MAX_REGISTRY_TAG_VAL_LENGTH)
    return value


def alias_name(alias: str) -> str:
    """An alias to set: MLflow's characters, and neither ``latest`` nor a version (``v1``)."""
    if not _ALIAS_RE.match(alias):
        raise invalid(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), "
            "and dashes (-)."
        )
    exceeds("Registered model alias name", alias, MAX_ALIAS_LENGTH)
    if alias.lower() == "latest":
        raise invalid("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS_RE.match(alias):
        raise invalid(f"Version alias name '{alias}' is reserved.")
    return alias


def at_most(path: str, value, limit: int) -> None:
    """MLflow's server refuses a number over ``limit`` with the value as it was sent (text in a
    query string)."""
    if int(value) > limit:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
        raise invalid(
            f"Invalid value {shown} for parameter '{path}' supplied:  Hint: Value was of type "
            f"'{type(value).__name__}'. See the API docs for more information about request parameters."
        )
