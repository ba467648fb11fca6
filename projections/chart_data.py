"""Chart data for many runs at once, sampled and aggregated in DuckDB: the latest value of each
metric per run (scatter, parallel coordinates, bars) and each run's metric histories thinned to a
bounded number of points per line (line charts).

Both start from a runs ``search.Query`` (the runs table's filter grammar, a set of run ids), so the
runs charted are the runs the search finds, and both are read through ``Projection.query``: under
``scope.reading_as`` the tables they read hold only what the reader may see.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from trackledger.projections.runs import DEFAULT_ORDER
from trackledger.projections.search import Query

PARENT_TAG = "mlflow.parentRunId"

RUN_VALUES = f"""
    WITH chosen AS ({{chosen}})
    SELECT c.run_id, c.run_name, c.status, c.start_time, c.total_rows,
           t.value AS parent_id, parent.run_name AS parent_name,
           (SELECT list(struct_pack(key := p.key, value := p.value) ORDER BY p.key)
              FROM params p WHERE p.run_id = c.run_id) AS params,
           (SELECT list(struct_pack(key := m.key, value := m.value, step := m.step) ORDER BY m.key)
              FROM latest_metrics m WHERE m.run_id = c.run_id) AS metrics
    FROM chosen c
    LEFT JOIN run_tags t ON t.run_id = c.run_id AND t.key = '{PARENT_TAG}'
    LEFT JOIN runs parent ON parent.run_id = t.value
    ORDER BY c.start_time DESC, c.run_id
"""


def run_values(con: duckdb.DuckDBPyConnection, query: Query, limit: int) -> tuple[list[dict], int]:
    """The first ``limit`` runs of ``query`` in its order, each with its name, status, start time,
    parent (id and name, from the ``mlflow.parentRunId`` tag), params and latest metrics; and how
    many runs the query finds in all."""
    chosen = query.then_by(DEFAULT_ORDER).sql(
        "r.run_id, r.run_name, r.status, r.start_time, count(*) OVER () AS total_rows", limit=limit
    )
    cursor = con.execute(RUN_VALUES.format(chosen=chosen.text), list(chosen.params))
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    total = rows[0].pop("total_rows") if rows else 0
    for row in rows[1:]:
        del row["total_rows"]
    return rows, total


# Bucketed min/max: a line of more than ``points`` points is cut into ``buckets`` equal step ranges,
# and each range keeps its lowest and highest point; the first and last points are always kept. A
# spike survives the thinning, and a line never has more than 2 * buckets + 2 points.
SAMPLED_HISTORIES = """
    WITH chosen AS ({chosen}),
    points AS (
        SELECT DISTINCT m.run_id, m.key, m.step, m.timestamp, m.value
        FROM metrics m JOIN chosen c ON c.run_id = m.run_id
        WHERE list_contains(?::VARCHAR[], m.key)
    ),
    spans AS (
        SELECT *, count(*) OVER line AS n, min(step) OVER line AS lo, max(step) OVER line AS hi,
               row_number() OVER (line ORDER BY step, timestamp, value) AS from_start,
               row_number() OVER (line ORDER BY step DESC, timestamp DESC, value DESC) AS from_end
        FROM points WINDOW line AS (PARTITION BY run_id, key)
    ),
    bucketed AS (
        SELECT *, CASE WHEN hi = lo THEN 0
                       ELSE floor((step - lo)::DOUBLE * ? / (hi - lo + 1)) END AS bucket
        FROM spans WHERE n > ?
    ),
    ranked AS (
        SELECT *, row_number() OVER (bucket ORDER BY value, step) AS lowest,
                  row_number() OVER (bucket ORDER BY value DESC, step) AS highest
        FROM bucketed WINDOW bucket AS (PARTITION BY run_id, key, bucket)
    )
    SELECT run_id, key, step, timestamp, value FROM spans WHERE n <= ?
    UNION ALL
    SELECT run_id, key, step, timestamp, value FROM ranked
    WHERE lowest = 1 OR highest = 1 OR from_start = 1 OR from_end = 1
    ORDER BY run_id, key, step, timestamp
"""


def sampled_histories(con: duckdb.DuckDBPyConnection, query: Query, keys: list[str], points: int) -> pa.Table:
    """The histories of metrics ``keys`` of every run ``query`` finds, as Arrow (run_id, key, step,
    timestamp, value) sorted by run, key and step; a line of more than ``points`` points comes
    thinned to at most ``points`` (its first and last kept, and each step range's lowest and
    highest value). Exact duplicate points count once, as in MLflow."""
    buckets = max(1, (points - 2) // 2)
    chosen = query.sql("r.run_id", ordered=False)
    params = [*chosen.params, list(keys), buckets, points, points]
    return con.sql(SAMPLED_HISTORIES.format(chosen=chosen.text), params=params).to_arrow_table()


def points_per_run(con: duckdb.DuckDBPyConnection, query: Query) -> dict[str, int]:
    """For each metric key of the runs ``query`` finds, the most points one run has logged of it:
    a key with one point per run is a single value (a bar), not a line."""
    chosen = query.sql("r.run_id", ordered=False)
    rows = con.execute(
        f"""WITH chosen AS ({chosen.text})
            SELECT key, max(n) FROM (
                SELECT m.run_id, m.key, count(DISTINCT (m.step, m.timestamp, m.value)) AS n
                FROM metrics m JOIN chosen c ON c.run_id = m.run_id GROUP BY ALL)
            GROUP BY key ORDER BY key""",
        list(chosen.params),
    ).fetchall()
    return dict(rows)
