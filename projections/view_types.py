"""MLflow's view types: which lifecycle stage a search of experiments or runs shows."""

from __future__ import annotations

from trackledger.projections.filters import InvalidQuery

# view type -> the lifecycle stage it shows; None: every stage. Runs of a deleted experiment are
# deleted with it (apply cascades its lifecycle to them), so runs need no experiment join.
VIEW_TYPES: dict[str, str | None] = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": None}


def lifecycle_condition(view_type: str, column: str) -> str:
    """SQL that holds for the rows ``view_type`` shows, ``column`` being their lifecycle stage."""
    if view_type not in VIEW_TYPES:
        raise InvalidQuery(f"Invalid view type {view_type!r}; expected one of {list(VIEW_TYPES)}")
    stage = VIEW_TYPES[view_type]
    return "TRUE" if stage is None else f"{column} = '{stage}'"
