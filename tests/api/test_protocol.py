"""Request decoding: malformed bodies are refused in MLflow's words (its clients and tests match them)."""

import pytest
from trackledger.api import protocol
from trackledger.api.errors import MlflowError


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        (protocol.CreateExperiment, b'{"name": 123}', "Invalid value 123 for parameter 'name' supplied."),
        (
            protocol.CreateExperiment,
            b'{"name": "e", "artifact_location": 9.0}',
            "Invalid value 9.0 for parameter 'artifact_location' supplied.",
        ),
        (
            protocol.CreateExperiment,
            b'{"name": "e", "tags": "5"}',
            "Invalid value \"5\" for parameter 'tags' supplied.",
        ),
        (
            protocol.LogBatch,
            b'{"run_id": "r", "metrics": "foo"}',
            "Invalid value \"foo\" for parameter 'metrics' supplied.",
        ),
        (
            protocol.LogMetric,
            b'{"run_id": 31, "key": "k"}',
            "Invalid value 31 for parameter 'run_id' supplied.",
        ),
        (
            protocol.LogBatch,
            b'{"run_id": "r", "metrics": [{"key": "k", "value": {"a": [1]}, "timestamp": 1}]}',
            "Invalid value {\"a\":[1]} for parameter 'metrics[0].value' supplied.",
        ),
    ],
)
def test_a_field_of_the_wrong_type_is_named_with_its_value(kind, body, message):
    with pytest.raises(MlflowError) as refused:
        protocol.decode(kind, body)
    assert str(refused.value) == message
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_bare_nan_still_decodes_and_a_bad_one_is_named():
    assert protocol.decode(protocol.LogMetric, b'{"run_id": "r", "key": "k", "value": NaN}').run_id == "r"
    with pytest.raises(MlflowError, match="Invalid value 7 for parameter 'key' supplied"):
        protocol.decode(protocol.LogMetric, b'{"run_id": "r", "key": 7, "value": NaN}')
