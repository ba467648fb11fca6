"""The apply statements of webhooks (see ``apply`` for how statements run): one row per live
webhook, its settings as of the last update; a deleted webhook's row is gone."""

from __future__ import annotations

from trackledger.projections.statements import EVENT_ORDER, statement

WEBHOOKS = [
    statement(
        "webhook_created",
        """INSERT INTO webhooks
       SELECT webhook_id, name, description, url, webhook_events, status, filter_experiment_ids,
              nullif(filter_tag_key, ''), nullif(secret_sealed, ''), ts, ts, actor, seq
       FROM ev WHERE type = 'webhook_created' ON CONFLICT DO NOTHING""",
    ),
    statement(
        "webhook_updated",
        f"""UPDATE webhooks w SET
          name = coalesce(u.name, w.name), description = coalesce(u.description, w.description),
          url = coalesce(u.url, w.url), events = coalesce(u.events, w.events),
          status = coalesce(u.status, w.status),
          filter_experiment_ids = coalesce(u.filter_experiment_ids, w.filter_experiment_ids),
          filter_tag_key = CASE WHEN u.filter_tag_key IS NULL THEN w.filter_tag_key
                                ELSE nullif(u.filter_tag_key, '') END,
          secret_sealed = CASE WHEN u.secret_sealed IS NULL THEN w.secret_sealed
                               ELSE nullif(u.secret_sealed, '') END,
          last_updated_timestamp = greatest(w.last_updated_timestamp, u.ts)
       FROM (SELECT webhook_id,
               arg_max(name, {EVENT_ORDER}) FILTER (WHERE name IS NOT NULL) AS name,
               arg_max(description, {EVENT_ORDER}) FILTER (WHERE description IS NOT NULL) AS description,
               arg_max(url, {EVENT_ORDER}) FILTER (WHERE url IS NOT NULL) AS url,
               arg_max(webhook_events, {EVENT_ORDER}) FILTER (WHERE webhook_events IS NOT NULL) AS events,
               arg_max(status, {EVENT_ORDER}) FILTER (WHERE status IS NOT NULL) AS status,
               arg_max(filter_experiment_ids, {EVENT_ORDER}) FILTER (WHERE filter_experiment_ids IS NOT NULL)
                 AS filter_experiment_ids,
               arg_max(filter_tag_key, {EVENT_ORDER}) FILTER (WHERE filter_tag_key IS NOT NULL)
                 AS filter_tag_key,
               arg_max(secret_sealed, {EVENT_ORDER}) FILTER (WHERE secret_sealed IS NOT NULL)
                 AS secret_sealed,
               max(ts) AS ts
             FROM ev WHERE type = 'webhook_updated' GROUP BY webhook_id) u
       WHERE w.webhook_id = u.webhook_id""",
    ),
    statement(
        "webhook_deleted",
        "DELETE FROM webhooks WHERE webhook_id IN (SELECT webhook_id FROM ev WHERE type = 'webhook_deleted')",
    ),
]
