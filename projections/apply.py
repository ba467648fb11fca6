"""Applying a batch of events to the read models: one list of SQL statements.

The same statements serve incremental apply (the batch is a registered Arrow table) and
rebuild (the batch is ``read_parquet`` over the segments plus the WAL tail), so the two
cannot drift apart. Inside a batch, events are ordered by ``(seq, writer)`` and list items
by position: the last write wins for tags, names, status and lifecycle; the first value
wins for params (a re-log of the same value is a no-op). Across batches, later batches win.

The statement builders are in ``statements``, the registry's statements in ``apply_registry``,
and the SQL that writes each run's MLflow JSON in ``run_json``.
"""

from __future__ import annotations

import duckdb
from trackledger.projections.apply_accounts import ACCOUNTS
from trackledger.projections.apply_registry import IS_REGISTRY_EVENT, REGISTRY
from trackledger.projections.apply_webhooks import WEBHOOKS
from trackledger.projections.run_json import run_details, run_json
from trackledger.projections.statements import (
    EVENT_ORDER,
    ITEM_ORDER,
    items,
    last_write_wins,
    literal,
    statement,
    tag_ops,
)
from trackledger.projections.summaries import EVENT_SUMMARY

EXPERIMENTS = [
    statement(
        "experiment_created",
        """INSERT INTO experiments
       SELECT experiment_id, name, artifact_location, 'active', creation_time,
              coalesce(source_time, creation_time), actor
       FROM ev WHERE type = 'experiment_created' ON CONFLICT DO NOTHING""",
    ),
    statement(
        "experiment_renamed experiment_deleted experiment_restored",
        f"""UPDATE experiments e SET
          name = coalesce(u.name, e.name),
          lifecycle_stage = coalesce(u.stage, e.lifecycle_stage),
          last_update_time = greatest(e.last_update_time, u.ts)
       FROM (SELECT experiment_id,
               arg_max(name, {EVENT_ORDER}) FILTER (WHERE type = 'experiment_renamed') AS name,
               arg_max(CASE type WHEN 'experiment_deleted' THEN 'deleted' ELSE 'active' END, {EVENT_ORDER})
                 FILTER (WHERE type <> 'experiment_renamed') AS stage,
               max(coalesce(source_time, ts)) AS ts
             FROM ev WHERE type IN ('experiment_renamed', 'experiment_deleted', 'experiment_restored')
             GROUP BY experiment_id) u
       WHERE e.experiment_id = u.experiment_id""",
    ),
    *last_write_wins(
        "experiment_tags",
        ("experiment_id",),
        tag_ops("experiment_id", "'experiment_created'", "experiment_tag_set", "experiment_tag_deleted"),
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
    tag_ops("run_id", "'run_created', 'batch_logged'", None, "run_tag_deleted")
    + " UNION ALL "
    + _RUN_NAME_OPS
)

RUNS = [
    statement(
        "run_created",
        """INSERT INTO runs
       SELECT run_id, experiment_id, name, user_id, status, start_time, NULL, artifact_uri, 'active', actor,
              NULL
       FROM ev WHERE type = 'run_created' ON CONFLICT DO NOTHING""",
    ),
    *last_write_wins(
        "run_tags",
        ("run_id",),
        _RUN_TAG_OPS,
        "run_created run_updated batch_logged run_tag_deleted",
        "run_tag_deleted",
    ),
    statement(
        "batch_logged",
        f"""INSERT INTO params
        SELECT run_id, item.key, arg_min(item.value, {ITEM_ORDER})
        FROM {items("params", "'batch_logged'", "run_id")} GROUP BY ALL ON CONFLICT DO NOTHING""",
    ),
]

# MLflow keeps NaN as 0 beside an is-NaN flag, and compares that 0 when it picks the latest point.
NAN_AS_ZERO = "CASE WHEN isnan({v}) THEN 0 ELSE {v} END"

METRICS = [
    statement(
        "batch_logged",
        f"""CREATE OR REPLACE TEMP TABLE batch_metrics AS
        SELECT run_id, item.key AS key, item.value AS value, item.timestamp AS timestamp, item.step AS step,
               item.model_id AS model_id, item.dataset_name AS dataset_name,
               item.dataset_digest AS dataset_digest, seq, writer, pos
        FROM {items("metrics", "'batch_logged'", "run_id")}""",
    ),
    statement(
        "batch_logged",
        """INSERT INTO metrics SELECT run_id, key, value, timestamp, step, model_id, dataset_name,
                                      dataset_digest, seq FROM batch_metrics""",
    ),
    # MLflow's "latest": highest step, then latest timestamp, then largest value (NaN counting as
    # 0); of points equal in all three, the first logged stays.
    statement(
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
    statement(
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
    statement(
        "inputs_logged",
        f"""INSERT INTO dataset_inputs
        SELECT * EXCLUDE (o) FROM (
          SELECT run_id, item.name, item.digest,
                 list_filter(item.tags, lambda t: t.key = 'mlflow.data.context')[1].value AS context,
                 item.source_type, item.source, item.schema, item.profile, item.tags, seq, {ITEM_ORDER} AS o
          FROM {items("datasets", "'inputs_logged'", "run_id")}
          QUALIFY row_number() OVER (PARTITION BY run_id, item.name, item.digest ORDER BY o) = 1) b
        WHERE NOT EXISTS (SELECT 1 FROM ({_batch_rows("dataset_inputs", "inputs_logged")}) d
                          WHERE d.run_id = b.run_id AND d.name = b.name AND d.digest = b.digest)""",
    ),
    *[
        statement(
            event_type,
            f"""INSERT INTO {table}
            SELECT run_id, item.model_id, item.step, min(seq)
            FROM {items("models", f"'{event_type}'", "run_id")} b
            WHERE NOT EXISTS (SELECT 1 FROM ({_batch_rows(table, event_type)}) d
                              WHERE d.run_id = b.run_id AND d.model_id = b.item.model_id
                                AND d.step = b.item.step)
            GROUP BY ALL""",
        )
        for table, event_type in (("model_inputs", "inputs_logged"), ("model_outputs", "outputs_logged"))
    ],
]


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
    statement(
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
    statement(
        "logged_model_created",
        """INSERT INTO logged_models
       SELECT model_id, experiment_id, name, artifact_location, creation_time,
              coalesce(source_time, creation_time), status, model_type, source_run_id, 'active', actor
       FROM ev WHERE type = 'logged_model_created' ON CONFLICT DO NOTHING""",
    ),
    statement(
        "logged_model_updated logged_model_tags_set logged_model_params_logged logged_model_tag_deleted "
        "logged_model_deleted",
        f"""UPDATE logged_models m SET
          status = coalesce(u.status, m.status),
          lifecycle_stage = coalesce(u.stage, m.lifecycle_stage),
          last_updated_timestamp_ms = greatest(m.last_updated_timestamp_ms, u.ts)
       FROM (SELECT model_id,
               arg_max(status, {EVENT_ORDER})
                 FILTER (WHERE type = 'logged_model_updated' AND status IS NOT NULL)
                 AS status,
               max(CASE WHEN type = 'logged_model_deleted' THEN 'deleted' END) AS stage,
               max(coalesce(source_time, ts)) AS ts
             FROM ev WHERE type IN ('logged_model_updated', 'logged_model_tags_set',
                                    'logged_model_params_logged', 'logged_model_tag_deleted',
                                    'logged_model_deleted')
             GROUP BY model_id) u
       WHERE m.model_id = u.model_id""",
    ),
    *last_write_wins(
        "logged_model_tags",
        ("model_id",),
        tag_ops(
            "model_id", "'logged_model_created', 'logged_model_tags_set'", None, "logged_model_tag_deleted"
        ),
        "logged_model_created logged_model_tags_set logged_model_tag_deleted",
        "logged_model_tag_deleted",
    ),
    statement(
        "logged_model_created logged_model_params_logged",
        f"""INSERT INTO logged_model_params
        SELECT model_id, item.key, arg_min(item.value, {ITEM_ORDER})
        FROM {items("params", "'logged_model_created', 'logged_model_params_logged'", "model_id")}
        GROUP BY ALL ON CONFLICT DO NOTHING""",
    ),
]

AUDIT = [
    statement(
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
    # A deletion removes the rows of its files written before it (one written again later stays).
    statement(
        "artifacts_deleted",
        """DELETE FROM artifacts USING (
          SELECT file.path, max(seq) AS seq FROM (SELECT seq, unnest(files) AS file FROM ev
          WHERE type = 'artifacts_deleted') GROUP BY file.path) deleted
        WHERE artifacts.path = deleted.path AND artifacts.seq < deleted.seq""",
    ),
    # The audit log keeps the envelope and a one-line summary, not the payload (metrics stay in metrics).
    # Registry events also keep their model's key (as in REGISTRY_EV) and version: a model's history.
    statement(
        None,
        f"""INSERT INTO events
       SELECT writer, seq, id, ts, type, actor, actor_verified, remote_addr, user_agent, experiment_id,
              run_id, model_id,
{EVENT_SUMMARY},
              CASE WHEN {IS_REGISTRY_EVENT} THEN coalesce(registered_model_id, name) END,
              CASE WHEN {IS_REGISTRY_EVENT} THEN version END,
              claimed_actor
       FROM ev""",
    ),
    # Last: the checkpoint commits in the same transaction as the state it describes.
    statement(
        None,
        """INSERT INTO checkpoints SELECT writer, max(seq) FROM ev GROUP BY writer
       ON CONFLICT DO UPDATE SET last_seq = greatest(checkpoints.last_seq, excluded.last_seq)""",
    ),
]

STATEMENTS = [
    *EXPERIMENTS,
    *RUNS,
    *METRICS,
    *INPUTS,
    *RUN_UPDATE,
    *LOGGED_MODELS,
    *REGISTRY,
    *WEBHOOKS,
    *ACCOUNTS,
    *AUDIT,
]


def apply_source(con: duckdb.DuckDBPyConnection, source: str, *, copy: bool = True) -> int:
    """Apply the events of ``source`` (a relation or SELECT, without parameters) not yet checkpointed.

    With ``copy`` the events are first copied into a temp table ``ev`` (best for small batches:
    a copy binds faster than a wide view); without, ``ev`` is a view over the source and each
    statement reads only the columns it needs (a rebuild, straight from Parquet). Only the
    statements the batch's event types can affect run at all.
    Runs inside the caller's transaction; returns how many events were applied.
    """
    done = con.execute("SELECT writer, last_seq FROM checkpoints").fetchall()
    after = " ".join(f"WHEN {literal(writer)} THEN {int(seq)}" for writer, seq in done)
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
