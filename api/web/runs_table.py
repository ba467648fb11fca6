"""The experiment page's runs table: what the query string asks for, and the columns it shows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from starlette.requests import Request
from trackledger.api.validation import integer
from trackledger.projections.view_types import VIEW_TYPES

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
DEFAULT_KEYS_SHOWN = 8  # per kind, when the user has not chosen columns yet
VIEWS = {stage or "all": view_type for view_type, stage in VIEW_TYPES.items()}  # ?view= -> view type

# Fixed columns: id -> (label, css class). Param, metric and tag columns are "p:<key>", "m:<key>"
# and "t:<key>"; the optional columns below are chosen by id.
FIXED_COLUMNS = {
    "status": ("Status", ""),
    "name": ("Run", ""),
    "user": ("User", ""),
    "start": ("Started (UTC)", ""),
    "duration": ("Duration", "num"),
}
# Optional columns of lists (a run's dataset inputs, the models it logged): shown on request, not sortable.
OPTIONAL_COLUMNS = {"datasets": "Datasets", "models": "Logged models"}


@dataclass(frozen=True)
class Column:
    id: str
    label: str
    css: str = ""
    group: str = ""  # "param", "metric" or "tag", shown under the key
    next_direction: str = "asc"
    sortable: bool = True


# Pages past this one would put the row offset outside DuckDB's int64; they are all empty anyway.
MAX_PAGE = 1_000_000_000


@dataclass
class RunsQuery:
    filter: str = ""
    sort: str = "start"
    direction: str = "desc"
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE
    view: str = "active"
    chosen_params: list[str] | None = None  # None: the user has not chosen, show the first few
    chosen_metrics: list[str] | None = None
    chosen_tags: list[str] = field(default_factory=list)  # none unless chosen
    chosen_optional: list[str] = field(default_factory=list)

    @classmethod
    def from_request(cls, request: Request) -> RunsQuery:
        q = request.query_params
        chosen = q.get("columns") == "chosen"
        per_page = _int(q.get("per"), DEFAULT_PAGE_SIZE)
        return cls(
            filter=q.get("filter", "").strip(),
            sort=q.get("sort") or "start",
            direction="asc" if q.get("dir") == "asc" else "desc",
            page=min(max(1, _int(q.get("page"), 1)), MAX_PAGE),
            per_page=per_page if per_page in PAGE_SIZES else DEFAULT_PAGE_SIZE,
            view=q.get("view") if q.get("view") in VIEWS else "active",
            chosen_params=q.getlist("p") if chosen else None,
            chosen_metrics=q.getlist("m") if chosen else None,
            chosen_tags=q.getlist("t"),
            chosen_optional=[c for c in q.getlist("c") if c in OPTIONAL_COLUMNS],
        )

    @property
    def view_type(self) -> str:
        return VIEWS[self.view]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass
class RunsTable:
    """What experiment.html renders. ``rows`` are in tree order: each run's children (tag
    ``mlflow.parentRunId``) follow it, and ``total`` counts the top-level runs the pager pages."""

    query: RunsQuery
    all_params: list[str]
    all_metrics: list[str]
    all_tags: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    total: int = 0  # top-level runs: those without a parent among the runs found
    total_runs: int = 0  # every run found
    error: str = ""

    def __post_init__(self):
        q = self.query
        self.params = _chosen(q.chosen_params, self.all_params)
        self.metrics = _chosen(q.chosen_metrics, self.all_metrics)
        self.tags = [key for key in q.chosen_tags if key in self.all_tags]
        self.optional = [c for c in OPTIONAL_COLUMNS if c in q.chosen_optional]
        if not self.is_known_sort(q.sort):
            q.sort, q.direction = "start", "desc"

    def is_known_sort(self, column_id: str) -> bool:
        kind, _, key = column_id.partition(":")
        return (
            column_id in FIXED_COLUMNS
            or (kind == "p" and key in self.all_params)
            or (kind == "m" and key in self.all_metrics)
            or (kind == "t" and key in self.all_tags)
        )

    @property
    def optional_choices(self) -> dict[str, str]:
        return OPTIONAL_COLUMNS

    @property
    def chosen_count(self) -> int:
        return len(self.params) + len(self.metrics) + len(self.tags) + len(self.optional)

    @property
    def choices_count(self) -> int:
        return len(self.all_params) + len(self.all_metrics) + len(self.all_tags) + len(OPTIONAL_COLUMNS)

    @property
    def nested(self) -> bool:
        return any(row["depth"] or row["children"] for row in self.rows)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.query.per_page))

    @property
    def first(self) -> int:
        return self.query.offset + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.query.offset + sum(1 for row in self.rows if row["depth"] == 0)

    @property
    def columns(self) -> list[Column]:
        cols = [Column(cid, label, css) for cid, (label, css) in FIXED_COLUMNS.items()]
        cols += [Column(f"p:{k}", k, "", "param") for k in self.params]
        cols += [Column(f"m:{k}", k, "num", "metric") for k in self.metrics]
        cols += [Column(f"t:{k}", k, "", "tag") for k in self.tags]
        cols += [Column(c, OPTIONAL_COLUMNS[c], sortable=False) for c in self.optional]
        # Clicking the sorted column flips it; a new column starts with the order people expect.
        return [
            Column(c.id, c.label, c.css, c.group, _next_direction(c, self.query), c.sortable) for c in cols
        ]


def _next_direction(column: Column, query: RunsQuery) -> str:
    if column.id == query.sort:
        return "asc" if query.direction == "desc" else "desc"
    return "desc" if column.id in ("start", "duration") or column.group == "metric" else "asc"


def _chosen(chosen: list[str] | None, available: list[str]) -> list[str]:
    if chosen is None:
        return available[:DEFAULT_KEYS_SHOWN]
    return [key for key in chosen if key in available]


def _int(text: str | None, default: int) -> int:
    number = integer(text)
    return default if number is None else number
