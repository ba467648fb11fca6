"""One compiler for every search: MLflow's filter and order_by (parsed by ``filters``) become one
parameterised DuckDB query, and this is the one place where a page of it, or its count, is read
(LIMIT and OFFSET are bounded here).

A ``Searchable`` describes what can be searched: its table, its attributes and its child rows
(params, tags, metrics, dataset inputs). ``Searchable.query()`` starts a ``Query``; its
``filter`` and ``order_by`` compile the user's text, and the search's own conditions (view types,
the experiments searched, a permission filter) and joins go into the same ``Query`` with
``restrict`` and ``join``. A page and its count are then read from every condition at once, so
paging and counts stay right whatever was added.

Only identifiers from the ``Searchable`` and placeholders (``?``) reach the SQL text; every key
and value the user wrote travels as a parameter. Each fragment carries its own parameters and
fragments are put together in the order of the SQL text, so no caller orders parameters by hand.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
from trackledger.projections.filters import (
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Clause,
    InvalidQuery,
    OrderKey,
    parse_filter,
    parse_order_by,
)


@dataclass(frozen=True)
class Sql:
    """A fragment of SQL text and the parameters of its placeholders, in order."""

    text: str
    params: tuple = ()

    @staticmethod
    def join(parts: Iterable[Sql], separator: str) -> Sql:
        parts = list(parts)
        return Sql(separator.join(p.text for p in parts), tuple(v for p in parts for v in p.params))


@dataclass(frozen=True)
class Attribute:
    """A column of the searched row. ``sort``: what to order by instead of the column (text ids
    that sort as numbers)."""

    column: str
    numeric: bool = False
    sort: str | None = None


@dataclass(frozen=True)
class Child:
    """Rows of another table that belong to the searched row: ``link`` is the condition tying a
    row ``{x}`` to it. Key/value rows (params, tags, metrics) match a clause by ``key``; rows
    with named ``fields`` (a run's dataset inputs) take the clause's key as the field's name.

    Numeric values follow MLflow on NaN: a NaN matches only ``!=`` and sorts after every number
    (DuckDB counts it above them all)."""

    table: str
    link: str
    numeric: bool = False
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Searchable:
    """What one search reads: ``source`` (``table alias``), its attributes (name ->
    ``Attribute``), and its children (filter entity -> ``Child``)."""

    source: str
    attributes: dict[str, Attribute]
    children: dict[str, Child] = field(default_factory=dict)

    def query(self) -> Query:
        return Query(self)


def comparison(column: str, clause: Clause, numeric: bool) -> Sql:
    """``column <comparator> ?`` after checking that the comparator and value fit the type."""
    op, value = clause.comparator, clause.value
    if op in ("IS NULL", "IS NOT NULL"):
        return Sql(f"{column} {op}")
    allowed = NUMERIC_COMPARATORS if numeric else STRING_COMPARATORS
    if op not in allowed:
        kind = "numeric" if numeric else "string"
        raise InvalidQuery(
            f"Invalid comparator {op!r} for {kind} {clause.entity} {clause.key!r}; "
            f"expected one of {list(allowed)}"
        )
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if numeric and not isinstance(v, float):
            raise InvalidQuery(f"Invalid value {v!r} for {clause.entity} {clause.key!r}: expected a number")
        if not numeric and not isinstance(v, str):
            raise InvalidQuery(
                f"Invalid value {v!r} for {clause.entity} {clause.key!r}: expected a quoted string"
            )
    if op in ("IN", "NOT IN"):
        return Sql(f"{column} {op} ({', '.join('?' * len(values))})", values)
    return Sql(f"{column} {op} ?", values)


def number_comparison(column: str, clause: Clause) -> Sql:
    """A numeric comparison where a NaN value matches only ``!=``, as in MLflow."""
    sql = comparison(column, clause, True)
    if clause.comparator == "!=" or clause.comparator.startswith("IS"):
        return sql
    return Sql(f"{sql.text} AND NOT isnan({column})", sql.params)


def sort_term(expression: str, descending: bool, nan: bool = False) -> str:
    """ORDER BY terms for one key: rows without a value last in either direction and, with
    ``nan``, a NaN after every number but before the rows without a value (MLflow's order)."""
    nan_last = f"isnan({expression}), " if nan else ""
    return f"{expression} IS NULL, {nan_last}{expression} {'DESC' if descending else 'ASC'}"


class Query:
    """A search being compiled; see the module's docstring."""

    def __init__(self, searchable: Searchable):
        self.searchable = searchable
        self._joins: list[Sql] = []
        self._where: list[Sql] = []
        self._order: list[Sql] = []

    # Conditions -------------------------------------------------------------------------

    def restrict(self, condition: str | Sql, *params) -> Query:
        """Only rows meeting ``condition`` (SQL on the searched row and its joins)."""
        self._where.append(condition if isinstance(condition, Sql) else Sql(condition, params))
        return self

    def join(self, clause: str, *params) -> Query:
        """A join, for a condition or a column of the page; it must not repeat a searched row."""
        self._joins.append(Sql(clause, params))
        return self

    def filter(self, text: str | None, entities: dict[str, str] | None = None) -> Query:
        """MLflow's filter: a key without a prefix is an attribute. ``entities`` narrows the
        prefixes (see ``filters.split_identifier``)."""
        for clause in parse_filter(text, "attribute", entities):
            self._where.append(self.condition(clause))
        return self

    def condition(self, clause: Clause) -> Sql:
        """SQL for one parsed clause on this search's attributes and children."""
        searchable = self.searchable
        if clause.entity == "attribute":
            attribute = searchable.attributes.get(clause.key)
            if attribute is None:
                raise InvalidQuery(
                    f"Invalid attribute key {clause.key!r}; expected one of {sorted(searchable.attributes)}"
                )
            return comparison(attribute.column, clause, attribute.numeric)
        child = searchable.children.get(clause.entity)
        if child is None:
            raise InvalidQuery(f"Invalid filter entity {clause.entity!r} here")
        if child.fields:
            if clause.key not in child.fields:
                raise InvalidQuery(
                    f"Invalid {clause.entity} key {clause.key!r}; expected one of {list(child.fields)}"
                )
            return _exists(child, comparison(f"x.{clause.key}", clause, False))
        if clause.comparator in ("IS NULL", "IS NOT NULL"):
            found = _exists(child, Sql("x.key = ?", (clause.key,)))
            return Sql(f"NOT {found.text}", found.params) if clause.comparator == "IS NULL" else found
        numeric = child.numeric
        test = number_comparison("x.value", clause) if numeric else comparison("x.value", clause, False)
        return _exists(child, Sql(f"x.key = ? AND {test.text}", (clause.key, *test.params)))

    # Order ------------------------------------------------------------------------------

    def order_by(self, items: Iterable[str] | None, entities: dict[str, str] | None = None) -> Query:
        """MLflow's order_by items (``<identifier> [ASC|DESC]``), before any ``then_by``."""
        return self.order_keys(parse_order_by(items, "attribute", entities))

    def order_keys(self, keys: Iterable[OrderKey]) -> Query:
        """Parsed order_by keys: attributes sort by their column, children join their value."""
        for key in keys:
            if key.entity == "attribute":
                attribute = self.searchable.attributes.get(key.key)
                if attribute is None:
                    raise InvalidQuery(
                        f"Invalid order_by attribute {key.key!r}; "
                        f"expected one of {sorted(self.searchable.attributes)}"
                    )
                self._order.append(Sql(sort_term(attribute.sort or attribute.column, key.descending)))
                continue
            child = self.searchable.children.get(key.entity)
            if child is None:
                raise InvalidQuery(f"Invalid order_by entity {key.entity!r} here")
            if child.fields:
                raise InvalidQuery(f"order_by on {key.entity}s is not supported")
            alias = f"o{len(self._joins)}"
            self.join(
                f"LEFT JOIN {child.table} {alias} ON {child.link.format(x=alias)} AND {alias}.key = ?",
                key.key,
            )
            self._order.append(Sql(sort_term(f"{alias}.value", key.descending, nan=child.numeric)))
        return self

    def then_by(self, terms: str, *params) -> Query:
        """ORDER BY terms after those already given (tie-breaks, a search's default order)."""
        self._order.append(Sql(terms, params))
        return self

    # Reading ----------------------------------------------------------------------------

    def sql(
        self, columns: str | Sql, *, limit: int | None = None, offset: int = 0, ordered: bool = True
    ) -> Sql:
        """The SELECT of ``columns`` over every join and condition, in order, and a page of it."""
        selected = columns if isinstance(columns, Sql) else Sql(columns)
        parts = [Sql(f"SELECT {selected.text} FROM {self.searchable.source}", selected.params), *self._joins]
        where = Sql.join(self._where, ") AND (")
        parts.append(Sql(f"WHERE ({where.text})", where.params) if self._where else Sql("WHERE true"))
        if ordered and self._order:
            order = Sql.join(self._order, ", ")
            parts.append(Sql(f"ORDER BY {order.text}", order.params))
        if limit is not None:
            parts.append(Sql("LIMIT ? OFFSET ?", (_bounded(limit), _bounded(offset))))
        return Sql.join(parts, " ")

    def page(
        self, con: duckdb.DuckDBPyConnection, columns: str, max_results: int, page_token: str | None
    ) -> tuple[list[tuple], str | None]:
        """A page of rows of ``columns`` and the next page's token (None on the last page)."""
        if max_results is None or max_results < 1:
            raise InvalidQuery(f"Invalid max_results {max_results!r}: must be a positive integer")
        offset = decode_page_token(page_token)
        sql = self.sql(columns, limit=page_limit(max_results), offset=offset)
        rows = con.execute(sql.text, list(sql.params)).fetchall()
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        return rows[:max_results], token

    def window(
        self, con: duckdb.DuckDBPyConnection, columns: str, offset: int, limit: int
    ) -> tuple[list[dict], int]:
        """Rows ``offset`` to ``offset + limit`` as dicts by column name, and how many rows the
        search has in all (for a pager: counted also when the window is past the end)."""
        sql = self.sql(f"{columns}, count(*) OVER () AS total_rows", limit=limit, offset=offset)
        cursor = con.execute(sql.text, list(sql.params))
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        if rows:
            return rows, rows[0]["total_rows"]
        if offset == 0:
            return [], 0
        count = self.sql("count(*)", ordered=False)
        ((total,),) = con.execute(count.text, list(count.params)).fetchall()
        return [], total

    def forest_window(
        self, con: duckdb.DuckDBPyConnection, columns: str, key: str, parent: str, offset: int, limit: int
    ) -> tuple[list[dict], int, int]:
        """A page of the search as a forest: the rows whose ``parent`` (an SQL expression naming
        another row's ``key``) is not among the rows found are the top level, which is sorted and
        paged; every row found under a top-level row of the page follows it, depth first, siblings
        in the same order. A row whose parent was filtered out (or may not be read) is top level.

        Returns the rows (dicts by column name, with ``tree_depth`` and ``tree_parent``), the
        number of top-level rows (for a pager) and the number of rows found in all. A cycle of
        parents with no top-level row in it (parent tags edited by hand) is not shown."""
        order = Sql.join(self._order, ", ") if self._order else Sql("true")
        ranked = Sql(
            f"{columns}, {key} AS tree_key, {parent} AS tree_parent, "
            f"row_number() OVER (ORDER BY {order.text}) AS tree_rank",
            order.params,
        )
        found = self.sql(ranked, ordered=False)
        forest = Sql(f"WITH RECURSIVE found AS ({found.text}), {_TOP_LEVEL}", found.params)
        page = Sql(_FOREST_PAGE, (_bounded(limit), _bounded(offset)))
        sql = Sql.join([forest, page], ", ")
        cursor = con.execute(sql.text, list(sql.params))
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        if rows:
            return rows, rows[0]["tree_top_rows"], rows[0]["tree_rows"]
        counts = Sql.join(
            [forest, Sql("SELECT (SELECT count(*) FROM top), (SELECT count(*) FROM found)")], " "
        )
        ((top_rows, all_rows),) = con.execute(counts.text, list(counts.params)).fetchall()
        return [], top_rows, all_rows


# The forest's top level: rows without a parent among those found (or their own parent).
_TOP_LEVEL = """top AS (
    SELECT tree_key, tree_rank FROM found f
    WHERE tree_parent IS NULL OR tree_parent = tree_key
       OR NOT EXISTS (SELECT 1 FROM found p WHERE p.tree_key = f.tree_parent))"""
# A page of the top level, then the rows under it: each row's path is its ancestors' ranks and
# its own, so ordering by path puts every row under its parent, siblings in the search's order.
_FOREST_PAGE = """shown AS (SELECT tree_key, tree_rank FROM top ORDER BY tree_rank LIMIT ? OFFSET ?),
    tree AS (
        SELECT tree_key, 0 AS tree_depth, [tree_rank] AS tree_path FROM shown
        UNION ALL
        SELECT f.tree_key, t.tree_depth + 1, list_append(t.tree_path, f.tree_rank)
        FROM tree t JOIN found f ON f.tree_parent = t.tree_key AND f.tree_parent <> f.tree_key)
    SELECT found.*, tree.tree_depth,
           (SELECT count(*) FROM top) AS tree_top_rows, (SELECT count(*) FROM found) AS tree_rows
    FROM tree JOIN found USING (tree_key) ORDER BY tree.tree_path"""


def _exists(child: Child, test: Sql) -> Sql:
    return Sql(
        f"EXISTS (SELECT 1 FROM {child.table} x WHERE {child.link.format(x='x')} AND {test.text})",
        test.params,
    )


# Paging -----------------------------------------------------------------------------------

# More rows than any answer can have; bounds LIMIT and OFFSET, which DuckDB takes as int64.
MAX_ROWS = 2**40


def _bounded(rows: int) -> int:
    return min(max(rows, 0), MAX_ROWS)


def page_limit(max_results: int) -> int:
    """The LIMIT that reads one page and tells whether another follows."""
    return min(max_results, MAX_ROWS) + 1


def encode_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidQuery(f"Invalid page_token {token!r}") from exc
    if type(offset) is not int or not 0 <= offset <= MAX_ROWS:  # JSON true is no offset
        raise InvalidQuery(f"Invalid page_token {token!r}")
    return offset
