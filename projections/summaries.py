"""Each event in one line of text: the ``summary`` column of the ``events`` table, and the ``events``
command's lines, from the same SQL.

The expression reads the columns of a segment (``SEGMENT_SCHEMA``) of the relation ``ev``.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

# Kept as the apply statement has always spelled it: its text is part of the derivation digest.
EVENT_SUMMARY = """              CASE type
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
                WHEN 'artifacts_deleted' THEN path || ' deleted (' || len(files) || ' files, '
                  || coalesce(list_sum(list_transform(files, lambda f: f.size)), 0) || ' bytes)'
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
                WHEN 'logged_model_params_logged' THEN list_transform(params, lambda p: p.key)::VARCHAR
                WHEN 'webhook_deleted' THEN webhook_id
                WHEN 'user_created' THEN username || CASE WHEN is_admin THEN ' (admin)' ELSE '' END
                WHEN 'user_password_changed' THEN username || ': password changed'
                WHEN 'user_admin_changed' THEN username || ': admin ' || is_admin
                WHEN 'user_deleted' THEN username
                WHEN 'token_created' THEN username || ': token ' || token_id
                  || coalesce(' expires ' || expires_at, '')
                WHEN 'token_revoked' THEN username || ': token ' || token_id || ' revoked'
                WHEN 'permission_granted' THEN permission || ' on ' || resource_type || ' ' || resource_id
                  || ' to ' || username
                WHEN 'permission_revoked' THEN 'revoked ' || resource_type || ' ' || resource_id
                  || ' from ' || username
                ELSE coalesce(name, key, '')
              END"""


def event_summaries(events: pa.Table) -> list[str]:
    """The summary of each row of ``events`` (a table of ``SEGMENT_SCHEMA``), in order."""
    con = duckdb.connect()
    try:
        con.register("ev", events.append_column("row_number", pa.array(range(events.num_rows), pa.int64())))
        rows = con.execute(f"SELECT {EVENT_SUMMARY} FROM ev ORDER BY row_number").fetchall()
    finally:
        con.close()
    return [summary for (summary,) in rows]
