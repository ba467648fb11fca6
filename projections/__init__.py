"""DuckDB read models of the ledger: apply, rebuild, queries, time travel and ad-hoc SQL.

``Projection`` is the live, server-side projection; ``connect`` builds one in memory from a
store for notebooks and offline tools; ``as_of`` does the same up to a point in the ledger.
"""

from trackledger.projections.filters import InvalidQuery
from trackledger.projections.projection import Projection, ProjectionUnavailable
from trackledger.projections.sandbox import QueryTimeout, QueryTooLarge, SqlLimits
from trackledger.projections.timetravel import as_of, connect

__all__ = [
    "InvalidQuery",
    "Projection",
    "ProjectionUnavailable",
    "QueryTimeout",
    "QueryTooLarge",
    "SqlLimits",
    "as_of",
    "connect",
]
