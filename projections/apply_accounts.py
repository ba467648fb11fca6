"""Accounts, tokens and permissions from their events.

Account events are few (people, not training loops), so each batch that has any re-derives the
four account tables whole from ``account_events``, which keeps every account event with its
payload: the same SQL for incremental apply and rebuild, and no ordering cases to get wrong
(a user created, deleted and created again in one batch). A user's tokens and grants count
only when made after the user's latest creation, so deleting a user takes them away.

The creator of an experiment or a registered model gets MANAGE on it: an ``experiment_created``
or ``registered_model_created`` event with a verified actor is kept as a grant.
``account_events`` and ``credentials`` hold hashes: the SQL endpoint never shows them.
"""

from __future__ import annotations

from trackledger.projections.statements import EVENT_ORDER, statement

ACCOUNT_TYPES = (
    "user_created user_password_changed user_admin_changed user_deleted token_created token_revoked "
    "permission_granted permission_revoked"
)
_CREATOR_TYPES = "experiment_created registered_model_created"
_QUOTED = ", ".join(f"'{t}'" for t in ACCOUNT_TYPES.split())

_ORDERED = f"(SELECT *, {EVENT_ORDER} AS o FROM account_events)"
# Each live user and the order of its latest creation.
_LIVE = f"""(SELECT username, born
    FROM (SELECT username, max(o) AS born FROM {_ORDERED} c WHERE type = 'user_created' GROUP BY username) b
    WHERE NOT EXISTS (SELECT 1 FROM {_ORDERED} d
                      WHERE d.type = 'user_deleted' AND d.username = b.username AND d.o > b.born))"""
_SINCE_BORN = f"(SELECT e.*, l.born FROM {_ORDERED} e JOIN {_LIVE} l USING (username) WHERE e.o >= l.born)"

ACCOUNTS = [
    statement(
        ACCOUNT_TYPES,
        f"""INSERT INTO account_events
        SELECT writer, seq, ts, type, actor, username, password_hash, is_admin, token_id, token_hash,
               expires_at, description, resource_type, resource_id, permission
        FROM ev WHERE type IN ({_QUOTED})""",
    ),
    statement(
        _CREATOR_TYPES,
        """INSERT INTO account_events
        SELECT writer, seq, ts, 'permission_granted', actor, actor, NULL, NULL, NULL, NULL, NULL, NULL,
               CASE type WHEN 'experiment_created' THEN 'experiment' ELSE 'registered_model' END,
               CASE type WHEN 'experiment_created' THEN experiment_id
                         ELSE coalesce(registered_model_id, name) END,
               'MANAGE'
        FROM ev WHERE type IN ('experiment_created', 'registered_model_created') AND actor_verified""",
    ),
    *[
        statement(f"{ACCOUNT_TYPES} {_CREATOR_TYPES}", sql)
        for sql in (
            "DELETE FROM users",
            f"""INSERT INTO users
            SELECT username,
                   arg_max(is_admin, o) FILTER (WHERE type IN ('user_created', 'user_admin_changed')),
                   arg_max(actor, o) FILTER (WHERE type = 'user_created'),
                   arg_max(ts, o) FILTER (WHERE type = 'user_created'),
                   max(ts) FILTER (WHERE type LIKE 'user_%')
            FROM {_SINCE_BORN} GROUP BY username""",
            "DELETE FROM credentials",
            f"""INSERT INTO credentials
            SELECT 'password', username, username,
                   arg_max(password_hash, o) FILTER (WHERE type IN ('user_created', 'user_password_changed'))
            FROM {_SINCE_BORN} GROUP BY username
            UNION ALL
            SELECT 'token', token_id, username, token_hash FROM {_SINCE_BORN} t
            WHERE type = 'token_created' AND NOT EXISTS (
              SELECT 1 FROM account_events r WHERE r.type = 'token_revoked' AND r.token_id = t.token_id)""",
            "DELETE FROM tokens",
            f"""INSERT INTO tokens
            SELECT token_id, username, description, actor, ts, expires_at,
                   EXISTS (SELECT 1 FROM account_events r
                           WHERE r.type = 'token_revoked' AND r.token_id = t.token_id)
            FROM {_SINCE_BORN} t WHERE type = 'token_created'""",
            "DELETE FROM permissions",
            f"""INSERT INTO permissions
            SELECT username, resource_type, resource_id, arg_max(permission, o), arg_max(actor, o),
                   arg_max(ts, o)
            FROM {_SINCE_BORN} WHERE type IN ('permission_granted', 'permission_revoked')
            GROUP BY username, resource_type, resource_id
            HAVING arg_max(type, o) = 'permission_granted'""",
        )
    ],
]
