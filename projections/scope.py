"""What one reader may see, as SQL: the experiments and registered models they may read.

A ``Scope`` is either an allow-list (the default permission lets nobody read) or a deny-list
(the default lets everybody read, some grants take it away) per kind of resource. Its clauses
go into the WHERE of the query that answers a search or builds a sandbox snapshot, so paging,
counts and the sandbox only ever meet rows the reader may see. ``None`` in place of a scope
means everything (an admin, or auth off).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IdSet:
    ids: frozenset[str]
    allow: bool  # True: only these; False: all but these

    def clause(self, column: str, params: list) -> str:
        if self.allow and not self.ids:
            return "false"
        if not self.allow and not self.ids:
            return "true"
        params.append(sorted(self.ids))
        return f"{'' if self.allow else 'NOT '}list_contains(?, {column})"

    def __contains__(self, resource_id: object) -> bool:
        return (resource_id in self.ids) == self.allow


@dataclass(frozen=True, slots=True)
class Scope:
    experiments: IdSet
    registered_models: IdSet  # by registered_model_id
    username: str = ""

    def experiment_clause(self, column: str, params: list) -> str:
        return self.experiments.clause(column, params)

    def registered_model_clause(self, column: str, params: list) -> str:
        return self.registered_models.clause(column, params)

    def experiment_condition(self, column: str) -> tuple:
        """(condition, *params), for ``search.Query.restrict``."""
        params: list = []
        return (self.experiment_clause(column, params), *params)

    def registered_model_condition(self, column: str) -> tuple:
        params: list = []
        return (self.registered_model_clause(column, params), *params)


def readable_runs(scope: Scope, params: list) -> str:
    return f"SELECT run_id FROM runs WHERE {scope.experiment_clause('experiment_id', params)}"


def readable_logged_models(scope: Scope, params: list) -> str:
    return f"SELECT model_id FROM logged_models WHERE {scope.experiment_clause('experiment_id', params)}"


def table_filters(scope: Scope) -> dict[str, tuple[str, list]]:
    """For each table a reader may query, the WHERE condition (and its parameters) of the rows
    they may see. Tables absent here are not shown to them at all."""
    filters: dict[str, tuple[str, list]] = {}

    def add(table: str, build) -> None:
        params: list = []
        filters[table] = (build(params), params)

    for table in ("experiments", "experiment_tags", "runs", "logged_models", "artifacts"):
        add(table, lambda p: scope.experiment_clause("experiment_id", p))
    for table in (
        "params",
        "run_tags",
        "metrics",
        "latest_metrics",
        "dataset_inputs",
        "model_inputs",
        "model_outputs",
    ):
        add(table, lambda p: f"run_id IN ({readable_runs(scope, p)})")
    for table in ("logged_model_tags", "logged_model_params", "logged_model_metrics"):
        add(table, lambda p: f"model_id IN ({readable_logged_models(scope, p)})")
    for table in (
        "registered_models",
        "registered_model_tags",
        "model_versions",
        "model_version_tags",
        "registered_model_aliases",
    ):
        add(table, lambda p: scope.registered_model_clause("registered_model_id", p))
    # Events: only those of an experiment the reader may read, and the registry's of the models they
    # may read (account events name neither: they are for admins and the people concerned, through
    # the API).
    add(
        "events",
        lambda p: (
            f"(experiment_id IS NOT NULL AND {scope.experiment_clause('experiment_id', p)}) OR "
            f"(registered_model_id IS NOT NULL AND {scope.registered_model_clause('registered_model_id', p)})"
        ),
    )
    for table in ("users", "tokens", "permissions"):
        add(table, lambda p: (p.append(scope.username), "username = ?")[1])
    for table in ("checkpoints", "derivation"):
        add(table, lambda p: "true")
    return filters


# Scoped reads of the live projection: the server's own parameterised reads (the web page's)
# run with the reader's scope set; each read's cursor then gets temporary views, named like the
# tables, over only the rows the scope may see. Temporary views shadow the tables for that cursor
# alone, so the same SQL serves an admin and a user with a scope.

_READ_SCOPE: ContextVar[Scope | None] = ContextVar("trackledger_read_scope", default=None)


@contextmanager
def reading_as(scope: Scope | None) -> Iterator[None]:
    """Reads of the projection made inside see only what ``scope`` may (None: everything)."""
    token = _READ_SCOPE.set(scope)
    try:
        yield
    finally:
        _READ_SCOPE.reset(token)


def _literal(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_literal, value)) + "]::VARCHAR[]"
    return "'" + str(value).replace("'", "''") + "'"


def shadow_tables(cursor, tables) -> None:
    """On ``cursor``, replace every table by a view of the rows the current read scope may see;
    tables the scope may not see at all become empty."""
    scope = _READ_SCOPE.get()
    if scope is None:
        return
    catalog = cursor.execute("SELECT current_database()").fetchone()[0]
    filters = table_filters(scope)
    for table in tables:
        where, params = filters.get(table, ("false", []))
        for param in params:
            where = where.replace("?", _literal(param), 1)
        cursor.execute(f'CREATE TEMP VIEW {table} AS SELECT * FROM "{catalog}".main.{table} WHERE {where}')
