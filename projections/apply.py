"""Applying a batch of events to the read models: one list of SQL statements.

The same statements serve incremental apply (the batch is a registered Arrow table) and
rebuild (the batch is ``read_parquet`` over the segments plus the WAL tail), so the two
cannot drift apart. Inside a batch, events are ordered by ``(seq, writer)`` and list items
by position: the last write wins for tags, names, status and lifecycle; the first value
wins for params (a re-log of the same value is a no-op). Across batches, later batches win.
"""

from __future__ import annotations

from typing import NamedTuple

import duckdb

# The order of an event in its batch, and of an item inside an event's list.
EVENT_ORDER = "{'seq': seq, 'writer': writer}"
ITEM_ORDER = "{'seq': seq, 'writer': writer, 'pos': pos}"


class Statement(NamedTuple):
    """One apply statement and the event types that can make it change anything: a batch
    without any of them skips it (every statement costs ~1-4 ms however small the batch)."""

    types: frozenset[str] | None  # None: every batch
    sql: str


def _s(types: str | None, sql: str) -> Statement:
    return Statement(None if types is None else frozenset(types.split()), sql)


def _items(column: str, types: str, *keys: str, source: str = "ev") -> str:
    """One row per element of ``column`` for events of ``types``, with its position."""
    cols = ", ".join(keys)
    return (
        f"(SELECT {cols}, seq, writer, ts, actor, unnest({column}) AS item, "
        f"unnest(range(len({column}))) AS pos FROM {source} WHERE type IN ({types}) AND len({column}) > 0)"
    )


def _last_write_wins(
    table: str,
    ids: tuple[str, ...],
    ops: str,
    types: str,
    delete_types: str = "",
    value: str = "value",
    key: str = "key",
) -> list[Statement]:
    """Upserts and deletes for a keyed table from ``ops`` rows: ids, key, value, deleted, o.

    ``types`` are the event types ``ops`` reads; only ``delete_types`` can make deleted rows.
    """
    cols = ", ".join((*ids, key))
    match = " AND ".join(f"t.{c} = d.{c}" for c in (*ids, key))
    statements = [
        _s(
            types,
            f"""CREATE OR REPLACE TEMP TABLE lww AS
            SELECT {cols}, arg_max_null({value}, o) AS {value}, arg_max(deleted, o) AS deleted
            FROM ({ops}) GROUP BY ALL""",
        ),
        _s(
            types,
            f"""INSERT INTO {table} ({cols}, {value}) SELECT {cols}, {value} FROM lww WHERE NOT deleted
            ON CONFLICT DO UPDATE SET {value} = excluded.{value}""",
        ),
    ]
    if delete_types:
        statements.insert(
            1,
            _s(
                delete_types, f"DELETE FROM {table} t USING (SELECT * FROM lww WHERE deleted) d WHERE {match}"
            ),
        )
    return statements


def _tag_ops(
    id_col: str, list_types: str, set_type: str | None, delete_type: str | None, source: str = "ev"
) -> str:
    parts = [
        f"SELECT {id_col}, item.key AS key, item.value AS value, false AS deleted, {ITEM_ORDER} AS o "
        f"FROM {_items('tags', list_types, id_col, source=source)}"
    ]
    if set_type:
        parts.append(
            f"SELECT {id_col}, key, value, false, {{'seq': seq, 'writer': writer, 'pos': 0}} "
            f"FROM {source} WHERE type = '{set_type}'"
        )
    if delete_type:
        parts.append(
            f"SELECT {id_col}, key, NULL, true, {{'seq': seq, 'writer': writer, 'pos': 0}} "
            f"FROM {source} WHERE type = '{delete_type}'"
        )
    return " UNION ALL ".join(parts)


EXPERIMENTS = [
    _s(
        "experiment_created",
        """INSERT INTO experiments
       SELECT experiment_id, name, artifact_location, 'active', creation_time, creation_time, actor
       FROM ev WHERE type = 'experiment_created' ON CONFLICT DO NOTHING""",
    ),
    _s(
        "experiment_renamed experiment_deleted experiment_restored",
        f"""UPDATE experiments e SET
          name = coalesce(u.name, e.name),
          lifecycle_stage = coalesce(u.stage, e.lifecycle_stage),
          last_update_time = greatest(e.last_update_time, u.ts)
       FROM (SELECT experiment_id,
               arg_max(name, {EVENT_ORDER}) FILTER (WHERE type = 'experiment_renamed') AS name,
               arg_max(CASE type WHEN 'experiment_deleted' THEN 'deleted' ELSE 'active' END, {EVENT_ORDER})
                 FILTER (WHERE type <> 'experiment_renamed') AS stage,
               max(ts) AS ts
             FROM ev WHERE type IN ('experiment_renamed', 'experiment_deleted', 'experiment_restored')
             GROUP BY experiment_id) u
       WHERE e.experiment_id = u.experiment_id""",
    ),
    *_last_write_wins(
        "experiment_tags",
        ("experiment_id",),
        _tag_ops("experiment_id", "'experiment_created'", "experiment_tag_set", "experiment_tag_deleted"),
        "experiment_created experiment_tag_set experiment_tag_deleted",
        "experiment_tag_deleted",
    ),
]

# A run's name and its mlflow.runName tag are one thing in MLflow: setting either sets both.
_RUN_NAME_OPS = """
    SELECT run_id, 'mlflow.runName' AS key, name AS value, false AS deleted,
           {'seq': seq, 'writer': writer, 'pos': -1} AS o
    FROM ev WHERE type IN ('run_created', 'run_updated') AND name IS NOT NULL AND name <> ''"""

_RUN_TAG_OPS = (
    _tag_ops("run_id", "'run_created', 'batch_logged'", None, "run_tag_deleted")
    + " UNION ALL "
    + _RUN_NAME_OPS
)

RUNS = [
    _s(
        "run_created",
        """INSERT INTO runs
       SELECT run_id, experiment_id, name, user_id, status, start_time, NULL, artifact_uri, 'active', actor,
              NULL
       FROM ev WHERE type = 'run_created' ON CONFLICT DO NOTHING""",
    ),
    *_last_write_wins(
        "run_tags",
        ("run_id",),
        _RUN_TAG_OPS,
        "run_created run_updated batch_logged run_tag_deleted",
        "run_tag_deleted",
    ),
    _s(
        "batch_logged",
        f"""INSERT INTO params
        SELECT run_id, item.key, arg_min(item.value, {ITEM_ORDER})
        FROM {_items("params", "'batch_logged'", "run_id")} GROUP BY ALL ON CONFLICT DO NOTHING""",
    ),
]

# MLflow keeps NaN as 0 beside an is-NaN flag, and compares that 0 when it picks the latest point.
NAN_AS_ZERO = "CASE WHEN isnan({v}) THEN 0 ELSE {v} END"

METRICS = [
    _s(
        "batch_logged",
        f"""CREATE OR REPLACE TEMP TABLE batch_metrics AS
        SELECT run_id, item.key AS key, item.value AS value, item.timestamp AS timestamp, item.step AS step,
               item.model_id AS model_id, item.dataset_name AS dataset_name,
               item.dataset_digest AS dataset_digest, seq, writer, pos
        FROM {_items("metrics", "'batch_logged'", "run_id")}""",
    ),
    _s(
        "batch_logged",
        """INSERT INTO metrics SELECT run_id, key, value, timestamp, step, model_id, dataset_name,
                                      dataset_digest, seq FROM batch_metrics""",
    ),
    # MLflow's "latest": highest step, then latest timestamp, then largest value (NaN counting as
    # 0); of points equal in all three, the first logged stays.
    _s(
        "batch_logged",
        f"""INSERT INTO latest_metrics
       SELECT run_id, key, best.value, best.timestamp, best.step FROM (
         SELECT run_id, key,
                arg_max({{'value': value, 'timestamp': timestamp, 'step': step}},
                        {{'step': step, 'timestamp': timestamp, 'value': {NAN_AS_ZERO.format(v="value")},
                          'seq': -seq, 'pos': -pos, 'writer': writer}}) AS best
         FROM batch_metrics GROUP BY ALL)
       ON CONFLICT DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, step = excluded.step
       WHERE {{'step': excluded.step, 'timestamp': excluded.timestamp,
               'value': {NAN_AS_ZERO.format(v="excluded.value")}}}
           > {{'step': latest_metrics.step, 'timestamp': latest_metrics.timestamp,
               'value': {NAN_AS_ZERO.format(v="latest_metrics.value")}}}""",
    ),
    _s(
        "batch_logged",
        """INSERT INTO logged_model_metrics
       SELECT model_id, run_id, key, value, timestamp, step, dataset_name, dataset_digest, seq
       FROM batch_metrics WHERE model_id IS NOT NULL""",
    ),
]


def _batch_rows(table: str, event_type: str) -> str:
    """The rows of ``table`` for the runs the batch's ``event_type`` events name: anti-joins then
    hash those runs' rows, not the whole table."""
    return f"SELECT * FROM {table} WHERE run_id IN (SELECT run_id FROM ev WHERE type = '{event_type}')"


INPUTS = [
    # The same dataset (name, digest) is recorded once per run, whatever its context: the first.
    _s(
        "inputs_logged",
        f"""INSERT INTO dataset_inputs
        SELECT * EXCLUDE (o) FROM (
          SELECT run_id, item.name, item.digest,
                 list_filter(item.tags, lambda t: t.key = 'mlflow.data.context')[1].value AS context,
                 item.source_type, item.source, item.schema, item.profile, item.tags, seq, {ITEM_ORDER} AS o
          FROM {_items("datasets", "'inputs_logged'", "run_id")}
          QUALIFY row_number() OVER (PARTITION BY run_id, item.name, item.digest ORDER BY o) = 1) b
        WHERE NOT EXISTS (SELECT 1 FROM ({_batch_rows("dataset_inputs", "inputs_logged")}) d
                          WHERE d.run_id = b.run_id AND d.name = b.name AND d.digest = b.digest)""",
    ),
    *[
        _s(
            event_type,
            f"""INSERT INTO {table}
            SELECT run_id, item.model_id, item.step, min(seq)
            FROM {_items("models", f"'{event_type}'", "run_id")} b
            WHERE NOT EXISTS (SELECT 1 FROM ({_batch_rows(table, event_type)}) d
                              WHERE d.run_id = b.run_id AND d.model_id = b.item.model_id
                                AND d.step = b.item.step)
            GROUP BY ALL""",
        )
        for table, event_type in (("model_inputs", "inputs_logged"), ("model_outputs", "outputs_logged"))
    ],
]


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


# Every event type that can change a run's row or its JSON. As in MLflow, deleting an experiment
# deletes its runs and restoring it restores them all (also those deleted before it).
_RUN_TYPES = """run_created run_updated run_deleted run_restored batch_logged run_tag_deleted inputs_logged
  outputs_logged experiment_deleted experiment_restored"""
_EXPERIMENT_STAGE_TYPES = "'experiment_deleted', 'experiment_restored'"
_EXPERIMENT_STAGE_RUNS = f"""SELECT r.run_id, e.type, e.seq, e.writer FROM ev e
    JOIN runs r ON r.experiment_id = e.experiment_id WHERE e.type IN ({_EXPERIMENT_STAGE_TYPES})"""
_TOUCHED_RUNS = "SELECT run_id FROM ev WHERE type IN ({}) UNION ALL SELECT run_id FROM ({})".format(
    ", ".join(f"'{t}'" for t in _RUN_TYPES.split()), _EXPERIMENT_STAGE_RUNS
)
# A run's lifecycle: the last of its own delete/restore events and its experiment's.
_RUN_STAGES = f"""SELECT run_id, arg_max(CASE WHEN type LIKE '%deleted' THEN 'deleted' ELSE 'active' END,
                                      {EVENT_ORDER}) AS stage
    FROM (SELECT run_id, type, seq, writer FROM ev WHERE type IN ('run_deleted', 'run_restored')
          UNION ALL {_EXPERIMENT_STAGE_RUNS})
    GROUP BY run_id"""
# A touched run's new values: status, end time and lifecycle from the run events, the name from the
# last mlflow.runName set (deleting that tag leaves the name alone).
_NEW_RUN_VALUES = {
    "status": "coalesce(u.status, r.status)",
    "end_time": "coalesce(u.end_time, r.end_time)",
    "lifecycle_stage": "coalesce(s.stage, r.lifecycle_stage)",
    "run_name": "coalesce(n.name, r.run_name)",
}

# Every change to existing run rows in one statement (each statement costs a few ms however small
# the batch), after the child tables are written, and the run's JSON from its new values.
RUN_UPDATE = [
    _s(
        _RUN_TYPES,
        f"""UPDATE runs r SET
          {", ".join(f"{column} = {value}" for column, value in _NEW_RUN_VALUES.items())},
          run_json = {run_json(_NEW_RUN_VALUES, "d.details")}
       FROM ({run_details(_TOUCHED_RUNS)}) d
       LEFT JOIN (SELECT run_id,
               arg_max(status, {EVENT_ORDER}) FILTER (WHERE type = 'run_updated' AND status IS NOT NULL)
                 AS status,
               arg_max(end_time, {EVENT_ORDER}) FILTER (WHERE type = 'run_updated' AND end_time IS NOT NULL)
                 AS end_time
             FROM ev WHERE type = 'run_updated' GROUP BY run_id) u
         USING (run_id)
       LEFT JOIN ({_RUN_STAGES}) s USING (run_id)
       LEFT JOIN (SELECT run_id, arg_max(value, o) AS name FROM ({_RUN_TAG_OPS})
              WHERE key = 'mlflow.runName' AND NOT deleted GROUP BY run_id) n USING (run_id)
       WHERE r.run_id = d.run_id""",
    )
]

LOGGED_MODELS = [
    _s(
        "logged_model_created",
        """INSERT INTO logged_models
       SELECT model_id, experiment_id, name, artifact_location, creation_time, creation_time, status,
              model_type, source_run_id, 'active', actor
       FROM ev WHERE type = 'logged_model_created' ON CONFLICT DO NOTHING""",
    ),
    _s(
        "logged_model_updated logged_model_tags_set logged_model_tag_deleted logged_model_deleted",
        f"""UPDATE logged_models m SET
          status = coalesce(u.status, m.status),
          lifecycle_stage = coalesce(u.stage, m.lifecycle_stage),
          last_updated_timestamp_ms = greatest(m.last_updated_timestamp_ms, u.ts)
       FROM (SELECT model_id,
               arg_max(status, {EVENT_ORDER})
                 FILTER (WHERE type = 'logged_model_updated' AND status IS NOT NULL)
                 AS status,
               max(CASE WHEN type = 'logged_model_deleted' THEN 'deleted' END) AS stage,
               max(ts) AS ts
             FROM ev WHERE type IN ('logged_model_updated', 'logged_model_tags_set',
                                    'logged_model_tag_deleted', 'logged_model_deleted')
             GROUP BY model_id) u
       WHERE m.model_id = u.model_id""",
    ),
    *_last_write_wins(
        "logged_model_tags",
        ("model_id",),
        _tag_ops(
            "model_id", "'logged_model_created', 'logged_model_tags_set'", None, "logged_model_tag_deleted"
        ),
        "logged_model_created logged_model_tags_set logged_model_tag_deleted",
        "logged_model_tag_deleted",
    ),
    _s(
        "logged_model_created",
        f"""INSERT INTO logged_model_params
        SELECT model_id, item.key, arg_min(item.value, {ITEM_ORDER})
        FROM {_items("params", "'logged_model_created'", "model_id")} GROUP BY ALL ON CONFLICT DO NOTHING""",
    ),
]

# Registry events with their model's key in registered_model_id: the id of the event that created
# the model, or, in events written before renames existed, its name (see ledger.events).
REGISTRY_EV = "(SELECT * REPLACE (coalesce(registered_model_id, name) AS registered_model_id) FROM ev)"

# Every effect that depends on the state (which versions a transition archives, which aliases a
# deletion drops, the next version number) is decided on the write path, into the events; here
# the last write wins, and deletions come last: nothing is written about a model or a version
# after its deletion, so anything earlier in the batch is deleted with it.
REGISTRY = [
    _s(
        "registered_model_created",
        f"""INSERT INTO registered_models
       SELECT registered_model_id, name, description, ts, ts, actor
       FROM {REGISTRY_EV} WHERE type = 'registered_model_created' ON CONFLICT DO NOTHING""",
    ),
    _s(
        "model_version_created",
        f"""INSERT INTO model_versions
       SELECT registered_model_id, version, source, run_id, model_id, description, 'None', ts, ts, actor,
              false
       FROM {REGISTRY_EV} WHERE type = 'model_version_created' ON CONFLICT DO NOTHING""",
    ),
    # As in MLflow, a model's last update is its last description, rename, or version created,
    # moved to a stage or deleted; tags and aliases leave it alone.
    _s(
        """registered_model_updated registered_model_renamed model_version_created model_version_stage_changed
           model_version_deleted""",
        f"""UPDATE registered_models r SET
          name = coalesce(u.name, r.name),
          description = CASE WHEN u.described THEN u.description ELSE r.description END,
          last_updated_timestamp = greatest(r.last_updated_timestamp, u.ts)
       FROM (SELECT registered_model_id,
               arg_max(new_name, {EVENT_ORDER}) FILTER (WHERE type = 'registered_model_renamed') AS name,
               arg_max_null(description, {EVENT_ORDER}) FILTER (WHERE type = 'registered_model_updated')
                 AS description,
               bool_or(type = 'registered_model_updated') AS described,
               max(ts) AS ts
             FROM {REGISTRY_EV}
             WHERE type IN ('registered_model_updated', 'registered_model_renamed', 'model_version_created',
                            'model_version_stage_changed', 'model_version_deleted')
             GROUP BY registered_model_id) u
       WHERE r.registered_model_id = u.registered_model_id""",
    ),
    # A version's last update: its description, stage, deletion, or (as in MLflow) its model's rename.
    _s(
        "model_version_updated model_version_stage_changed model_version_deleted registered_model_renamed",
        f"""UPDATE model_versions v SET
          description = CASE WHEN u.described THEN u.description ELSE v.description END,
          current_stage = coalesce(u.stage, v.current_stage),
          deleted = v.deleted OR u.deleted,
          last_updated_timestamp = greatest(v.last_updated_timestamp, u.ts)
       FROM (SELECT registered_model_id, version,
               arg_max_null(description, o) FILTER (WHERE type = 'model_version_updated') AS description,
               bool_or(type = 'model_version_updated') AS described,
               arg_max(stage, o) FILTER (WHERE type = 'model_version_stage_changed') AS stage,
               bool_or(type = 'model_version_deleted') AS deleted,
               max(ts) AS ts
             FROM (SELECT registered_model_id, version, type, description, stage, ts, {EVENT_ORDER} AS o
                   FROM {REGISTRY_EV} WHERE type IN ('model_version_updated', 'model_version_stage_changed',
                                                     'model_version_deleted')
                   UNION ALL
                   SELECT e.registered_model_id, m.version, e.type, NULL, NULL, e.ts,
                          {{'seq': e.seq, 'writer': e.writer}}
                   FROM {REGISTRY_EV} e JOIN model_versions m USING (registered_model_id)
                   WHERE e.type = 'registered_model_renamed')
             GROUP BY registered_model_id, version) u
       WHERE v.registered_model_id = u.registered_model_id AND v.version = u.version""",
    ),
    *_last_write_wins(
        "registered_model_tags",
        ("registered_model_id",),
        _tag_ops(
            "registered_model_id",
            "'registered_model_created'",
            "registered_model_tag_set",
            "registered_model_tag_deleted",
            source=REGISTRY_EV,
        ),
        "registered_model_created registered_model_tag_set registered_model_tag_deleted",
        "registered_model_tag_deleted",
    ),
    *_last_write_wins(
        "model_version_tags",
        ("registered_model_id", "version"),
        _tag_ops(
            "registered_model_id, version",
            "'model_version_created'",
            "model_version_tag_set",
            "model_version_tag_deleted",
            source=REGISTRY_EV,
        ),
        "model_version_created model_version_tag_set model_version_tag_deleted",
        "model_version_tag_deleted",
    ),
    *_last_write_wins(
        "registered_model_aliases",
        ("registered_model_id",),
        f"""SELECT registered_model_id, key AS alias, version,
                  type = 'registered_model_alias_deleted' AS deleted, {EVENT_ORDER} AS o
           FROM {REGISTRY_EV}
           WHERE type IN ('registered_model_alias_set', 'registered_model_alias_deleted')""",
        "registered_model_alias_set registered_model_alias_deleted",
        "registered_model_alias_deleted",
        value="version",
        key="alias",
    ),
    # A deleted version loses the aliases pointing to it, those set earlier in the batch included.
    _s(
        "model_version_deleted",
        f"""DELETE FROM registered_model_aliases a
       USING (SELECT registered_model_id, version FROM {REGISTRY_EV} WHERE type = 'model_version_deleted') d
       WHERE a.registered_model_id = d.registered_model_id AND a.version = d.version""",
    ),
    *[
        _s(
            "registered_model_deleted",
            f"""DELETE FROM {table} WHERE registered_model_id IN
           (SELECT registered_model_id FROM {REGISTRY_EV} WHERE type = 'registered_model_deleted')""",
        )
        for table in (
            "registered_model_aliases",
            "model_version_tags",
            "model_versions",
            "registered_model_tags",
            "registered_models",
        )
    ],
]

AUDIT = [
    _s(
        "artifact_written",
        f"""INSERT INTO artifacts
        SELECT path, arg_max(experiment_id, {EVENT_ORDER}), arg_max(run_id, {EVENT_ORDER}),
               arg_max(model_id, {EVENT_ORDER}), arg_max(size, {EVENT_ORDER}), arg_max(sha256, {EVENT_ORDER}),
               arg_max(actor, {EVENT_ORDER}), arg_max(ts, {EVENT_ORDER}), max(seq)
        FROM ev WHERE type = 'artifact_written' GROUP BY path
        ON CONFLICT DO UPDATE SET experiment_id = excluded.experiment_id, run_id = excluded.run_id,
          model_id = excluded.model_id, size = excluded.size, sha256 = excluded.sha256,
          actor = excluded.actor, ts = excluded.ts, seq = excluded.seq""",
    ),
    # The audit log keeps the envelope and a one-line summary, not the payload (metrics stay in metrics).
    _s(
        None,
        """INSERT INTO events
       SELECT writer, seq, id, ts, type, actor, actor_verified, remote_addr, user_agent, experiment_id,
              run_id, model_id,
              CASE type
                WHEN 'batch_logged' THEN left(concat_ws('; ',
                  CASE WHEN len(params) > 0 THEN 'params ' || array_to_string(
                    list_transform(params, lambda p: p.key || '=' || p.value), ', ') END,
                  CASE WHEN len(metrics) BETWEEN 1 AND 5 THEN 'metrics ' || array_to_string(
                    list_transform(metrics, lambda m: m.key || '=' || m.value || ' (step ' || m.step || ')'),
                    ', ')
                    WHEN len(metrics) > 5 THEN len(metrics) || ' metric points of ' || array_to_string(
                    list_sort(list_distinct(list_transform(metrics, lambda m: m.key))), ', ') END,
                  CASE WHEN len(tags) > 0 THEN 'tags ' || array_to_string(
                    list_transform(tags, lambda t: t.key || '=' || t.value), ', ') END), 400)
                WHEN 'artifact_written' THEN path || ' (' || size || ' bytes)'
                WHEN 'run_updated' THEN concat_ws(' ', 'status=' || status, 'end_time=' || end_time,
                                                  'name=' || name)
                WHEN 'logged_model_updated' THEN 'status=' || status
                WHEN 'inputs_logged' THEN concat_ws(', ',
                  CASE WHEN len(datasets) > 0 THEN len(datasets) || ' datasets' END,
                  CASE WHEN len(models) > 0 THEN len(models) || ' models' END)
                WHEN 'outputs_logged' THEN len(models) || ' models'
                WHEN 'model_version_created' THEN name || ' v' || version
                WHEN 'registered_model_alias_set' THEN name || '@' || key || ' -> v' || version
                WHEN 'registered_model_alias_deleted' THEN name || '@' || key
                WHEN 'registered_model_renamed' THEN name || ' renamed to ' || new_name
                WHEN 'registered_model_updated' THEN name || ': description '
                  || CASE WHEN description = '' THEN 'cleared' ELSE 'set' END
                WHEN 'registered_model_tag_set' THEN left(name || ': tag ' || key || '=' || value, 400)
                WHEN 'registered_model_tag_deleted' THEN name || ': tag ' || key || ' deleted'
                WHEN 'model_version_updated' THEN name || ' v' || version || ': description '
                  || CASE WHEN coalesce(description, '') = '' THEN 'cleared' ELSE 'set' END
                WHEN 'model_version_stage_changed' THEN name || ' v' || version || ' -> ' || stage
                WHEN 'model_version_deleted' THEN name || ' v' || version
                WHEN 'model_version_tag_set' THEN left(
                  name || ' v' || version || ': tag ' || key || '=' || value, 400)
                WHEN 'model_version_tag_deleted' THEN name || ' v' || version || ': tag ' || key || ' deleted'
                WHEN 'logged_model_tags_set' THEN list_transform(tags, lambda t: t.key)::VARCHAR
                ELSE coalesce(name, key, '')
              END
       FROM ev""",
    ),
    # Last: the checkpoint commits in the same transaction as the state it describes.
    _s(
        None,
        """INSERT INTO checkpoints SELECT writer, max(seq) FROM ev GROUP BY writer
       ON CONFLICT DO UPDATE SET last_seq = greatest(checkpoints.last_seq, excluded.last_seq)""",
    ),
]

STATEMENTS = [*EXPERIMENTS, *RUNS, *METRICS, *INPUTS, *RUN_UPDATE, *LOGGED_MODELS, *REGISTRY, *AUDIT]


def apply_source(
    con: duckdb.DuckDBPyConnection, source: str, params: list | None = None, *, copy: bool = True
) -> int:
    """Apply the events of ``source`` (a relation or SELECT, without parameters) not yet checkpointed.

    With ``copy`` the events are first copied into a temp table ``ev`` (best for small batches:
    a copy binds faster than a wide view); without, ``ev`` is a view over the source and each
    statement reads only the columns it needs (a rebuild, straight from Parquet). Only the
    statements the batch's event types can affect run at all.
    Runs inside the caller's transaction; returns how many events were applied.
    """
    if params:
        raise ValueError("apply_source takes a source without parameters")
    done = con.execute("SELECT writer, last_seq FROM checkpoints").fetchall()
    after = " ".join(f"WHEN {_literal(writer)} THEN {int(seq)}" for writer, seq in done)
    after = f"CASE s.writer {after} ELSE 0 END" if done else "0"
    kind = "TABLE" if copy else "VIEW"
    con.execute(f"CREATE OR REPLACE TEMP {kind} ev AS SELECT s.* FROM ({source}) s WHERE s.seq > {after}")
    try:
        types = dict(con.execute("SELECT type, count(*) FROM ev GROUP BY type").fetchall())
        for statement in STATEMENTS if types else ():
            if statement.types is None or not statement.types.isdisjoint(types):
                con.execute(statement.sql)
    finally:
        con.execute(f"DROP {kind} IF EXISTS temp.ev")
        for temp in ("lww", "batch_metrics"):
            con.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    return sum(types.values())


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
