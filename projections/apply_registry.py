"""The apply statements of the model registry (see ``apply`` for how statements run)."""

from __future__ import annotations

from trackledger.projections.statements import EVENT_ORDER, last_write_wins, statement, tag_ops

# Registry events with their model's key in registered_model_id: the id of the event that created
# the model, or, in events written before renames existed, its name (see ledger.events); and with
# the time of the change in ts: the source's for imported events.
REGISTRY_EV = """(SELECT * REPLACE (coalesce(registered_model_id, name) AS registered_model_id,
                                  coalesce(source_time, ts) AS ts) FROM ev)"""

# The registry's event types, by their names' prefixes.
IS_REGISTRY_EVENT = "(starts_with(type, 'registered_model_') OR starts_with(type, 'model_version_'))"

# Every effect that depends on the state (which versions a transition archives or a rename touches,
# the next version number) is decided on the write path, into the events; here the last write
# wins, and deletions come last: nothing is written about a model or a version after its deletion,
# so anything earlier in the batch is deleted with it (a deleted version's aliases included).
REGISTRY = [
    statement(
        "registered_model_created",
        f"""INSERT INTO registered_models
       SELECT registered_model_id, name, description, coalesce(creation_time, ts), ts, actor
       FROM {REGISTRY_EV} WHERE type = 'registered_model_created' ON CONFLICT DO NOTHING""",
    ),
    statement(
        "model_version_created",
        f"""INSERT INTO model_versions
       SELECT registered_model_id, version, source, run_id, model_id, description, 'None',
              coalesce(creation_time, ts), ts, actor,
              false
       FROM {REGISTRY_EV} WHERE type = 'model_version_created' ON CONFLICT DO NOTHING""",
    ),
    # As in MLflow, a model's last update is its last description, rename, or version created,
    # moved to a stage or deleted; tags and aliases leave it alone.
    statement(
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
    statement(
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
                   SELECT registered_model_id, unnest(versions), type, NULL, NULL, ts, {EVENT_ORDER}
                   FROM {REGISTRY_EV} WHERE type = 'registered_model_renamed' AND len(versions) > 0)
             GROUP BY registered_model_id, version) u
       WHERE v.registered_model_id = u.registered_model_id AND v.version = u.version""",
    ),
    *last_write_wins(
        "registered_model_tags",
        ("registered_model_id",),
        tag_ops(
            "registered_model_id",
            "'registered_model_created'",
            "registered_model_tag_set",
            "registered_model_tag_deleted",
            source=REGISTRY_EV,
        ),
        "registered_model_created registered_model_tag_set registered_model_tag_deleted",
        "registered_model_tag_deleted",
    ),
    *last_write_wins(
        "model_version_tags",
        ("registered_model_id", "version"),
        tag_ops(
            "registered_model_id, version",
            "'model_version_created'",
            "model_version_tag_set",
            "model_version_tag_deleted",
            source=REGISTRY_EV,
        ),
        "model_version_created model_version_tag_set model_version_tag_deleted",
        "model_version_tag_deleted",
    ),
    *last_write_wins(
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
    statement(
        "model_version_deleted",
        f"""DELETE FROM registered_model_aliases a
       USING (SELECT registered_model_id, version FROM {REGISTRY_EV} WHERE type = 'model_version_deleted') d
       WHERE a.registered_model_id = d.registered_model_id AND a.version = d.version""",
    ),
    *[
        statement(
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
