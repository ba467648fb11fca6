"""The search compiler on its own: MLflow's grammar to parameterised SQL, order, paging bounds and
conditions added by the caller, over a small table of its own (not the projection's)."""

from __future__ import annotations

import base64
import json
import math

import duckdb
import pytest
from trackledger.projections.filters import InvalidQuery, parse_filter, parse_order_by
from trackledger.projections.search import (
    MAX_ROWS,
    Attribute,
    Child,
    Searchable,
    decode_page_token,
    encode_page_token,
)

ITEMS = Searchable(
    "items i",
    {"id": Attribute("i.id"), "name": Attribute("i.name"), "size": Attribute("i.size", numeric=True)},
    {
        "tag": Child("item_tags", "{x}.id = i.id"),
        "metric": Child("item_scores", "{x}.id = i.id", numeric=True),
        "dataset": Child("item_sets", "{x}.id = i.id", fields=("name", "digest")),
    },
)


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("CREATE TABLE items (id VARCHAR, name VARCHAR, size BIGINT, owner VARCHAR)")
    con.execute("CREATE TABLE item_tags (id VARCHAR, key VARCHAR, value VARCHAR)")
    con.execute("CREATE TABLE item_scores (id VARCHAR, key VARCHAR, value DOUBLE)")
    con.execute("CREATE TABLE item_sets (id VARCHAR, name VARCHAR, digest VARCHAR)")
    con.execute("""INSERT INTO items VALUES ('a', 'Alice''s', 1, 'ann'), ('b', 'bob', 2, 'ann'),
                   ('c', 'Carol', NULL, 'ben'), ('d', 'dan', 4, 'ben')""")
    con.execute("""INSERT INTO item_tags VALUES ('a', 'team', 'x'), ('b', 'team', 'X'),
                   ('b', 'a.b', 'dotted'), ('c', 'team', 'y')""")
    con.execute("INSERT INTO item_scores VALUES ('a', 'acc', 0.9), ('b', 'acc', 0.5), ('c', 'acc', 'NaN')")
    con.execute("INSERT INTO item_sets VALUES ('a', 'train', 'd1'), ('d', 'eval', 'd2')")
    yield con
    con.close()


def ids(con, filter=None, order_by=(), restrict=None) -> list[str]:
    query = ITEMS.query().filter(filter).order_by(order_by)
    if restrict:
        query.restrict(*restrict)
    rows, _ = query.then_by("i.id").page(con, "i.id", 100, None)
    return [row[0] for row in rows]


@pytest.mark.parametrize(
    ("filter", "found"),
    [
        ("", ["a", "b", "c", "d"]),
        ("   ", ["a", "b", "c", "d"]),
        ("name = 'bob'", ["b"]),
        ('name = "bob"', ["b"]),
        ("attributes.name = 'bob'", ["b"]),
        ("attr.`name` != 'bob'", ["a", "c", "d"]),
        ("name = 'Alice''s'", []),  # MLflow keeps a doubled quote verbatim: no escape
        ("name = 'Alice''''s'", []),
        ("name LIKE '%o%'", ["b", "c"]),
        ("name ILIKE 'c%'", ["c"]),
        ("name like 'b%' and size >= 2", ["b"]),
        ("name IN ('bob', 'dan')", ["b", "d"]),
        ("name NOT IN ('bob')", ["a", "c", "d"]),
        ("name <> 'bob'", ["a", "c", "d"]),
        ("size > 1.5", ["b", "d"]),
        ("size <= 2e0", ["a", "b"]),
        ("size > -1", ["a", "b", "d"]),
        ("size < .5e1", ["a", "b", "d"]),
        ("size IS NULL", ["c"]),
        ("size IS NOT NULL", ["a", "b", "d"]),
        ("tags.team = 'x'", ["a"]),
        ("tags.team ILIKE 'x'", ["a", "b"]),
        ("tags.`a.b` = 'dotted'", ["b"]),
        ("tags.\"a.b\" = 'dotted'", ["b"]),
        ("tags.team IS NULL", ["d"]),
        ("tags.team IS NOT NULL", ["a", "b", "c"]),
        ("datasets.name = 'train'", ["a"]),
        ("dataset.digest IN ('d1', 'd2')", ["a", "d"]),
    ],
)
def test_filter_grammar(con, filter, found):
    assert ids(con, filter) == found


def test_nan_matches_only_not_equal_and_sorts_after_numbers_before_missing(con):
    assert ids(con, "metrics.acc > 0") == ["a", "b"]
    assert ids(con, "metrics.acc < 1e308") == ["a", "b"]
    assert ids(con, "metrics.acc != 0.5") == ["a", "c"]
    assert ids(con, order_by=["metrics.acc DESC"]) == ["a", "b", "c", "d"]
    assert ids(con, order_by=["metrics.acc ASC"]) == ["b", "a", "c", "d"]


def test_order_puts_missing_values_last_both_ways(con):
    assert ids(con, order_by=["size DESC"]) == ["d", "b", "a", "c"]
    assert ids(con, order_by=["attributes.size"]) == ["a", "b", "d", "c"]
    assert ids(con, order_by=["tags.team desc", "name"]) == ["c", "a", "b", "d"]
    assert ids(con, "size > 1", ["tags.team", "size DESC"]) == ["b", "d"]


@pytest.mark.parametrize(
    "bad",
    [
        "name = 'a' OR name = 'b'",
        "name = 'a' AND",
        "name =",
        "name",
        "name IN 'a'",
        "name IN ('a', 'b'",
        "name IN ('a' 'b')",
        "name = 'a' name = 'b'",
        "= 'a'",
        "nope = 'a'",
        "size > 'big'",
        "size LIKE '1%'",
        "name > 'a'",
        "name = 1",
        "tags.team = 1",
        "metrics.acc = 'x'",
        "metrics.acc IN (1, 2)",
        "params.p = 'x'",  # not a child of this search
        "datasets.size = 'x'",
        "tags. = 'x'",
        "name = 'unclosed",
        "name = 'a'; DROP TABLE items",
        "name = @x",
    ],
)
def test_bad_filters_raise_invalid_query(con, bad):
    with pytest.raises(InvalidQuery):
        ids(con, bad)


@pytest.mark.parametrize("bad", ["", "name size", "name ASC DESC", "datasets.name", "params.p", "nope"])
def test_bad_order_by_raises_invalid_query(con, bad):
    with pytest.raises(InvalidQuery):
        ids(con, order_by=[bad])


def test_only_placeholders_reach_the_sql_text_and_parameters_follow_it():
    query = ITEMS.query().join("LEFT JOIN item_tags j ON j.id = i.id AND j.key = ?", "joined")
    query.filter("name = 'x''; DROP TABLE items --' AND tags.`k'; --` LIKE '%'").order_by(["tags.`o k`"])
    query.restrict("i.owner = ?", "ann").then_by("i.id")
    sql = query.sql("i.id", limit=3, offset=4)
    assert "DROP" not in sql.text and "o k" not in sql.text and "ann" not in sql.text
    assert sql.text.count("?") == len(sql.params)
    assert sql.params == ("joined", "o k", "x''; DROP TABLE items --", "k'; --", "%", "ann", 3, 4)


def test_a_condition_added_by_the_caller_bounds_pages_and_counts(con):
    """As a permission filter will: pages and totals cover only the rows it lets through."""
    query = ITEMS.query().filter("size IS NOT NULL").restrict("i.owner = ANY(?::VARCHAR[])", ["ann"])
    query.order_by(["size DESC"])
    first, token = query.page(con, "i.id", 1, None)
    rest, last = query.page(con, "i.id", 1, token)
    assert (first, rest, last) == ([("b",)], [("a",)], None)
    rows, total = query.window(con, "i.id", 0, 1)
    assert [r["id"] for r in rows] == ["b"] and total == 2
    assert query.window(con, "i.id", 5, 1) == ([], 2)  # past the end: still counted
    assert ITEMS.query().restrict("false").window(con, "i.id", 0, 10) == ([], 0)


def test_paging_bounds(con):
    query = ITEMS.query().then_by("i.id")
    rows, token = query.page(con, "i.id", 3, None)
    assert [r[0] for r in rows] == ["a", "b", "c"] and decode_page_token(token) == 3
    assert query.page(con, "i.id", 3, token) == ([("d",)], None)
    assert query.page(con, "i.id", 10**30, None) == ([(i,) for i in "abcd"], None)
    assert query.page(con, "i.id", 2, encode_page_token(MAX_ROWS)) == ([], None)
    assert query.window(con, "i.id", 10**30, 10**30) == ([], 4)
    for bad in (0, -1, None):
        with pytest.raises(InvalidQuery):
            query.page(con, "i.id", bad, None)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        base64.b64encode(b"[1]").decode(),
        base64.b64encode(b"{}").decode(),
        encode_page_token(-1),
        encode_page_token(MAX_ROWS + 1),
        base64.b64encode(json.dumps({"offset": 1.5}).encode()).decode(),
        base64.b64encode(json.dumps({"offset": True}).encode()).decode(),
        base64.b64encode(json.dumps({"offset": "3"}).encode()).decode(),
    ],
)
def test_bad_page_tokens_raise(token):
    with pytest.raises(InvalidQuery):
        decode_page_token(token)


def test_parsed_clauses_keep_keys_and_values_as_written():
    (clause,) = parse_filter("tags.`mlflow.runName` = 'it''s'", "attribute")
    assert (clause.entity, clause.key, clause.comparator, clause.value) == (
        "tag",
        "mlflow.runName",
        "=",
        "it''s",
    )
    (clause,) = parse_filter("metric.acc >= -1.5E2", "attribute")
    assert clause.value == -150.0 and not math.isnan(clause.value)
    (clause,) = parse_filter("x IN ('a', \"b\")", "attribute")
    assert clause.value == ("a", "b")
    assert [
        (k.entity, k.key, k.descending) for k in parse_order_by(["params.`a b` desc", "name"], "attribute")
    ] == [
        ("param", "a b", True),
        ("attribute", "name", False),
    ]
