"""How apply statements are written: each declares the event types it reads, and a few builders
for the recurring shapes (list items of an event, last-write-wins upserts of keyed tables, tags).

The statements themselves are in ``apply`` (and ``apply_registry``): the same SQL serves
incremental apply and rebuild, over a relation ``ev`` of events.
"""

from __future__ import annotations

from typing import NamedTuple

# The order of an event in its batch, and of an item inside an event's list.
EVENT_ORDER = "{'seq': seq, 'writer': writer}"
ITEM_ORDER = "{'seq': seq, 'writer': writer, 'pos': pos}"


class Statement(NamedTuple):
    """One apply statement and the event types that can make it change anything: a batch
    without any of them skips it (every statement costs ~1-4 ms however small the batch)."""

    types: frozenset[str] | None  # None: every batch
    sql: str


def literal(text: str) -> str:
    """``text`` as a SQL string literal, for the few places that cannot take a parameter (views,
    CASE arms built from the checkpoints)."""
    return "'" + text.replace("'", "''") + "'"


def statement(types: str | None, sql: str) -> Statement:
    return Statement(None if types is None else frozenset(types.split()), sql)


def items(column: str, types: str, *keys: str, source: str = "ev") -> str:
    """One row per element of ``column`` for events of ``types``, with its position."""
    cols = ", ".join(keys)
    return (
        f"(SELECT {cols}, seq, writer, ts, actor, unnest({column}) AS item, "
        f"unnest(range(len({column}))) AS pos FROM {source} WHERE type IN ({types}) AND len({column}) > 0)"
    )


def last_write_wins(
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
        statement(
            types,
            f"""CREATE OR REPLACE TEMP TABLE lww AS
            SELECT {cols}, arg_max_null({value}, o) AS {value}, arg_max(deleted, o) AS deleted
            FROM ({ops}) GROUP BY ALL""",
        ),
        statement(
            types,
            f"""INSERT INTO {table} ({cols}, {value}) SELECT {cols}, {value} FROM lww WHERE NOT deleted
            ON CONFLICT DO UPDATE SET {value} = excluded.{value}""",
        ),
    ]
    if delete_types:
        statements.insert(
            1,
            statement(
                delete_types, f"DELETE FROM {table} t USING (SELECT * FROM lww WHERE deleted) d WHERE {match}"
            ),
        )
    return statements


def tag_ops(
    id_col: str, list_types: str, set_type: str | None, delete_type: str | None, source: str = "ev"
) -> str:
    parts = [
        f"SELECT {id_col}, item.key AS key, item.value AS value, false AS deleted, {ITEM_ORDER} AS o "
        f"FROM {items('tags', list_types, id_col, source=source)}"
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
