"""Each run's MLflow JSON object (``runs.run_json``), written in SQL from the run's rows: the
apply statement that updates runs derives it, so that a search answers with stored text."""

from __future__ import annotations


def _json_list(item: str, order: str) -> str:
    return f"to_json(list({item} ORDER BY {order}))"


def _number_json(column: str) -> str:
    """SQL for the JSON text of a DOUBLE. JSON has no NaN or infinities: they are written as the
    strings "NaN", "Infinity" and "-Infinity", as protobuf's JSON mapping (which the mlflow client
    parses) does."""
    return f"""(CASE WHEN isnan({column}) THEN '"NaN"'
      WHEN isinf({column}) THEN CASE WHEN {column} > 0 THEN '"Infinity"' ELSE '"-Infinity"' END
      ELSE to_json({column}) END)"""


# A dataset input as MLflow returns it: fields that are null are left out, and so are empty tags.
_DATASET_INPUT_JSON = """'{' || concat_ws(',', CASE WHEN len(tags) > 0 THEN '"tags":' || to_json(tags) END,
  '"dataset":{' || concat_ws(',', '"name":' || to_json(name), '"digest":' || to_json(digest),
    '"source_type":' || to_json(source_type), '"source":' || to_json(source), '"schema":' || to_json(schema),
    '"profile":' || to_json(profile)) || '}') || '}'"""


def run_details(runs: str) -> str:
    """A SELECT of (run_id, details) for the runs ``runs`` (a SELECT of run_id): each run's data,
    inputs and outputs as MLflow returns them, the members of a JSON object without its braces,
    from the run's rows in the child tables."""
    key_value = "{'key': key, 'value': value}"
    metric = f"{{'key': key, 'value': ({_number_json('value')})::JSON, 'timestamp': timestamp, 'step': step}}"
    children = {
        "m": ("latest_metrics", _json_list(metric, "key")),
        "p": ("params", _json_list(key_value, "key")),
        "t": ("run_tags", _json_list(key_value, "key")),
        "di": (
            "dataset_inputs",
            f"'[' || string_agg({_DATASET_INPUT_JSON}, ',' ORDER BY seq, name, digest, context) || ']'",
        ),
        "mi": ("model_inputs", _json_list("{'model_id': model_id}", "seq, model_id, step")),
        "mo": ("model_outputs", _json_list("{'model_id': model_id, 'step': step}", "seq, model_id, step")),
    }
    joins = "".join(
        f"\n  LEFT JOIN (SELECT run_id, {json} AS j FROM {table} WHERE run_id IN (SELECT run_id FROM touched)"
        f" GROUP BY run_id) {alias} USING (run_id)"
        for alias, (table, json) in children.items()
    )
    return f"""WITH touched AS MATERIALIZED ({runs})
  SELECT run_id, '"data":{{' || concat_ws(',', '"metrics":' || m.j, '"params":' || p.j, '"tags":' || t.j)
    || '}},"inputs":{{' || concat_ws(',', '"dataset_inputs":' || di.j, '"model_inputs":' || mi.j)
    || '}},"outputs":{{' || concat_ws(',', '"model_outputs":' || mo.j) || '}}' AS details
  FROM (SELECT DISTINCT run_id FROM touched) k{joins}"""


# MLflow's run info: (field, runs column); null ones are left out.
_RUN_INFO = (
    ("run_uuid", "run_id"),
    ("experiment_id", "experiment_id"),
    ("run_name", "run_name"),
    ("user_id", "user_id"),
    ("status", "status"),
    ("start_time", "start_time"),
    ("end_time", "end_time"),
    ("artifact_uri", "artifact_uri"),
    ("lifecycle_stage", "lifecycle_stage"),
    ("run_id", "run_id"),
)


def run_json(values: dict[str, str], details: str) -> str:
    """SQL for a run's JSON object as MLflow returns it: its info from ``values`` (runs column ->
    SQL expression; ``r.<column>`` for the others) and ``details`` (what ``run_details`` gives)."""
    info = ", ".join(
        f"""'"{field}":' || to_json({values.get(column, "r." + column)})""" for field, column in _RUN_INFO
    )
    return f"""'{{"info":{{' || concat_ws(',', {info}) || '}},' || {details} || '}}'"""
