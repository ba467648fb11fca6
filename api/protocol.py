"""Request bodies of the MLflow REST API as msgspec Structs, and their decoding.

Fields are optional here so that a missing one gets MLflow's own message
("Missing value for required parameter ...") rather than a decoder error. Decoding is lax
(``strict=False``): MLflow clients send ``"NaN"``/``"Infinity"`` as strings and some send
int64 fields as strings, as protobuf JSON allows.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

import msgspec
from trackledger.api.errors import MlflowError, invalid

# Every integer ends up in an int64 Parquet column: refuse what would not fit there.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class KeyValue(msgspec.Struct, omit_defaults=True):
    key: str | None = None
    value: str | None = None


class RunRef(msgspec.Struct, omit_defaults=True):
    run_id: str | None = None
    run_uuid: str | None = None

    @property
    def id(self) -> str | None:
        return self.run_id or self.run_uuid


# Experiments ----------------------------------------------------------------------


class CreateExperiment(msgspec.Struct):
    name: str | None = None
    artifact_location: str | None = None
    tags: list[KeyValue] = []


class ExperimentRef(msgspec.Struct):
    experiment_id: str | None = None


class UpdateExperiment(msgspec.Struct):
    experiment_id: str | None = None
    new_name: str | None = None


class SetExperimentTag(msgspec.Struct):
    experiment_id: str | None = None
    key: str | None = None
    value: str | None = None


class DeleteExperimentTag(msgspec.Struct):
    experiment_id: str | None = None
    key: str | None = None


class SearchExperiments(msgspec.Struct):
    max_results: Int64 = 1000
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = []
    view_type: str = "ACTIVE_ONLY"


class SearchDatasets(msgspec.Struct):
    experiment_ids: list[str] = []


# Runs -------------------------------------------------------------------------------


class CreateRun(msgspec.Struct):
    experiment_id: str | None = None
    user_id: str | None = None
    run_name: str | None = None
    start_time: Int64 | None = None
    tags: list[KeyValue] = []


class UpdateRun(RunRef):
    status: str | None = None
    end_time: Int64 | None = None
    run_name: str | None = None


class LogMetric(RunRef):
    """log-metric's body, and each metric of a log-batch (whose run id, if any, is ignored)."""

    key: str | None = None
    value: float | None = None
    timestamp: Int64 | None = None
    step: Int64 | None = None
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogParam(RunRef):
    key: str | None = None
    value: str | None = None


class SetTag(RunRef):
    key: str | None = None
    value: str | None = None


class DeleteTag(RunRef):
    key: str | None = None


class LogBatch(RunRef):
    metrics: list[LogMetric] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class DatasetIn(msgspec.Struct):
    name: str | None = None
    digest: str | None = None
    source_type: str = ""
    source: str = ""
    schema: str | None = None
    profile: str | None = None


class DatasetInputIn(msgspec.Struct):
    dataset: DatasetIn | None = None
    tags: list[KeyValue] = []


class ModelIn(msgspec.Struct):
    model_id: str | None = None
    step: Int64 = 0


class LogInputs(RunRef):
    datasets: list[DatasetInputIn] = []
    models: list[ModelIn] = []


class LogOutputs(RunRef):
    models: list[ModelIn] = []


class SearchRuns(msgspec.Struct):
    experiment_ids: list[str] = []
    filter: str | None = None
    run_view_type: str = "ACTIVE_ONLY"
    max_results: Int64 = 1000
    order_by: list[str] = []
    page_token: str | None = None


# Logged models and the registry ------------------------------------------------------


class CreateLoggedModel(msgspec.Struct):
    experiment_id: str | None = None
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class FinalizeLoggedModel(msgspec.Struct):
    model_id: str | None = None
    status: str | None = None


class LogLoggedModelParams(msgspec.Struct):
    model_id: str | None = None
    params: list[KeyValue] = []


class SetLoggedModelTags(msgspec.Struct):
    model_id: str | None = None
    tags: list[KeyValue] = []


class LoggedModelOrderBy(msgspec.Struct):
    field_name: str | None = None
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


class DatasetFilterIn(msgspec.Struct):
    dataset_name: str | None = None
    dataset_digest: str | None = None


class SearchLoggedModels(msgspec.Struct):
    experiment_ids: list[str] = []
    filter: str | None = None
    datasets: list[DatasetFilterIn] = []
    order_by: list[LoggedModelOrderBy] = []
    max_results: Int64 = 100
    page_token: str | None = None


class CreateRegisteredModel(msgspec.Struct):
    name: str | None = None
    description: str = ""
    tags: list[KeyValue] = []


class CreateModelVersion(msgspec.Struct):
    name: str | None = None
    source: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    description: str = ""
    tags: list[KeyValue] = []


class SetAlias(msgspec.Struct):
    name: str | None = None
    alias: str | None = None
    version: str | None = None


class RegisteredModelRef(msgspec.Struct):
    name: str | None = None


class RenameRegisteredModel(RegisteredModelRef):
    new_name: str | None = None


class UpdateRegisteredModel(RegisteredModelRef):
    description: str | None = None


class GetLatestVersions(RegisteredModelRef):
    stages: list[str] = []


class RegisteredModelTag(RegisteredModelRef):
    key: str | None = None
    value: str | None = None


class ModelVersionRef(msgspec.Struct):
    name: str | None = None
    version: str | None = None


class UpdateModelVersion(ModelVersionRef):
    description: str | None = None


class TransitionModelVersionStage(ModelVersionRef):
    stage: str | None = None
    archive_existing_versions: bool = False


class ModelVersionTag(ModelVersionRef):
    key: str | None = None
    value: str | None = None


class SearchRegistry(msgspec.Struct):
    """Registered models or model versions: the default and the cap of max_results differ."""

    filter: str | None = None
    max_results: Int64 | None = None
    order_by: list[str] = []
    page_token: str | None = None


# Native -------------------------------------------------------------------------------


class SqlQuery(msgspec.Struct):
    query: str | None = None
    format: str = "json"


T = TypeVar("T")
_decoders: dict[type, msgspec.json.Decoder] = {}


# A JSON escape of a UTF-16 surrogate (or a raw byte that may start one): it needs the exact check.
_MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed")


def decode(kind: type[T], body: bytes) -> T:
    """Decode a JSON request body; malformed input becomes a 400, never a 5xx. Refused too: JSON
    nested deeper than Python recurses, and lone UTF-16 surrogates (``"\\ud800"``), which JSON
    allows but which are no character: no event could store them."""
    try:
        decoded = _decode(kind, body)
    except RecursionError:
        raise invalid("Invalid request body: JSON nested too deeply") from None
    if body and _MAY_HOLD_SURROGATE.search(body):
        try:
            msgspec.json.encode(decoded)
        except UnicodeEncodeError:
            raise invalid(
                "Invalid request body: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
            ) from None
    return decoded


def _decode(kind: type[T], body: bytes) -> T:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind, strict=False)
    try:
        return decoder.decode(body or b"{}")
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Number out of range") and (decoded := _decode_lenient(kind, body)):
            return decoded
        raise invalid(validation_message(exc, body)) from None
    except msgspec.DecodeError as exc:
        decoded = _decode_lenient(kind, body)
        if decoded is None:
            raise MlflowError(f"Malformed JSON in request body: {exc}", "BAD_REQUEST") from None
        return decoded


def _decode_lenient(kind: type[T], body: bytes) -> T | None:
    """The body as Python's json module reads it, which is what it writes for NaN, Infinity and
    floats out of range (bare ``NaN``, ``Infinity``, ``1e999``): MLflow's server takes those.
    Only the error path comes here."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid(validation_message(exc, body)) from None


_WRONG_TYPE = re.compile(r"Expected `[^`]*`, got `[^`]*` - at `\$\.?(?P<path>[^`]*)`$")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`(?: - at `\$\.?(?P<path>[^`]*)`)?$")


def validation_message(exc: msgspec.ValidationError, body: bytes) -> str:
    """MLflow's wording for a field of the wrong type or a missing one (its clients and tests
    match it): ``Invalid value "foo" for parameter 'metrics' supplied.``, with the offending value
    as compact JSON, and ``Missing value for required parameter 'metrics[0].timestamp'.``"""
    text = str(exc)
    if m := _MISSING.match(text):
        path = ".".join(p for p in (m["path"], m["field"]) if p).replace(".[", "[")
        return f"Missing value for required parameter '{path}'."
    if (m := _WRONG_TYPE.match(text)) and m["path"]:
        found, value = _value_at(body, m["path"])
        if found:
            shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
            return f"Invalid value {shown} for parameter '{m['path']}' supplied."
    return f"Invalid request body: {text}"


_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _value_at(body: bytes, path: str) -> tuple[bool, Any]:
    """The value at a msgspec error path (``metrics[0].value``) of a JSON body, if it has one."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False, None
    for key, index in _PATH_PART.findall(path):
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, value


def convert(kind: type[T], params: dict[str, Any]) -> T:
    """Build a request Struct from query-string values (GET variants of POST endpoints)."""
    try:
        return msgspec.convert(params, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid(f"Invalid query parameters: {exc}") from None
