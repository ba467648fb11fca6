"""MLflow's search filter and order_by grammar, parsed into clauses and order keys (``search``
compiles them to SQL).

    filter     := clause (AND clause)*
    clause     := identifier comparator value | identifier IS [NOT] NULL
    identifier := [entity "."] key      key: name, `back quoted` or "double quoted"
    value      := 'string' | "string" | number | "(" value ("," value)* ")"   (for IN / NOT IN)

As in MLflow, a doubled quote inside a string is not an escape: ``'Alice''s'`` is kept verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class InvalidQuery(ValueError):
    """A bad filter, order_by or page token; the message names the problem."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'[^']*'(?:'[^']*')*|"[^"]*")
      | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
      | (?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,)
      | (?P<word>(?:[A-Za-z_][\w:-]*|`[^`]*`|"[^"]*")(?:\.(?:[\w:-]+|`[^`]*`|"[^"]*"))*)
    )""",
    re.VERBOSE,
)

STRING_COMPARATORS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMERIC_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")

ENTITY_ALIASES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}


@dataclass(frozen=True)
class Clause:
    entity: str
    key: str
    comparator: str
    value: object  # str, float, tuple of those, or None for IS [NOT] NULL


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise InvalidQuery(f"Invalid filter: cannot parse {text[pos:]!r} (at character {pos})")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _unquote(part: str) -> str:
    if len(part) >= 2 and part[0] == part[-1] and part[0] in '`"':
        return part[1:-1]
    return part


def split_identifier(
    word: str, default_entity: str | None, entities: dict[str, str] | None = None
) -> tuple[str, str]:
    """``tags.`a.b``` -> ("tag", "a.b"); ``metrics.acc`` -> ("metric", "acc").

    ``entities`` (prefix -> entity) narrows the prefixes to those of one search; another prefix
    is then an error, as MLflow's registry searches have it, not part of an attribute's name.
    """
    head, dot, rest = word.partition(".")
    entity = (entities or ENTITY_ALIASES).get(head.lower()) if dot else None
    if entity is None and dot and entities is not None:
        raise InvalidQuery(f"Invalid entity type '{head}'. Valid entity types are {tuple(entities)}")
    if entity is None:
        if default_entity is None:
            raise InvalidQuery(
                f"Invalid identifier {word!r}: expected a prefix metrics., params., tags., "
                "attributes. or datasets."
            )
        return default_entity, _unquote(word)
    if not rest:
        raise InvalidQuery(f"Invalid identifier {word!r}: the key after {head!r}. is empty")
    return entity, _unquote(rest)


def _value(kind: str, text: str) -> str | float:
    if kind == "string":
        return text[1:-1]
    if kind == "number":
        return float(text)
    raise InvalidQuery(f"Invalid value {text!r}: expected a quoted string or a number")


def parse_filter(
    text: str | None, default_entity: str | None = None, entities: dict[str, str] | None = None
) -> list[Clause]:
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    clauses, i = [], 0
    while True:
        if i >= len(tokens) or tokens[i][0] != "word":
            got = tokens[i][1] if i < len(tokens) else "end of filter"
            raise InvalidQuery(f"Invalid filter {text!r}: expected an identifier, got {got!r}")
        entity, key = split_identifier(tokens[i][1], default_entity, entities)
        i += 1
        words = []
        while (
            i < len(tokens)
            and tokens[i][0] in ("word", "op")
            and tokens[i][1].upper()
            in ("NOT", "IN", "LIKE", "ILIKE", "IS", "=", "!=", "<>", "<", "<=", ">", ">=")
        ):
            words.append(tokens[i][1].upper())
            i += 1
            if words[-1] not in ("NOT", "IS"):
                break
        comparator = " ".join(words).replace("<>", "!=")
        if comparator in ("IS", "IS NOT") and i < len(tokens) and tokens[i][1].upper() == "NULL":
            comparator, value = f"{comparator} NULL", None
            i += 1
        elif comparator in ("IN", "NOT IN"):
            if i >= len(tokens) or tokens[i][1] != "(":
                raise InvalidQuery(f"Invalid filter {text!r}: {comparator} needs a parenthesised list")
            items, i = [], i + 1
            while True:
                if i >= len(tokens):
                    raise InvalidQuery(f"Invalid filter {text!r}: unclosed list after {comparator}")
                items.append(_value(*tokens[i]))
                i += 1
                if i < len(tokens) and tokens[i][1] == ",":
                    i += 1
                    continue
                if i < len(tokens) and tokens[i][1] == ")":
                    i += 1
                    break
                raise InvalidQuery(f"Invalid filter {text!r}: expected ',' or ')' in the {comparator} list")
            value = tuple(items)
        elif comparator in STRING_COMPARATORS or comparator in NUMERIC_COMPARATORS:
            if i >= len(tokens):
                raise InvalidQuery(f"Invalid filter {text!r}: missing value after {comparator!r}")
            value = _value(*tokens[i])
            i += 1
        else:
            raise InvalidQuery(
                f"Invalid filter {text!r}: expected a comparator after {key!r} "
                f"(one of =, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL)"
            )
        clauses.append(Clause(entity, key, comparator, value))
        if i == len(tokens):
            return clauses
        if tokens[i][0] != "word" or tokens[i][1].upper() != "AND":
            raise InvalidQuery(
                f"Invalid filter {text!r}: expected AND, got {tokens[i][1]!r} (OR is not supported)"
            )
        i += 1


@dataclass(frozen=True)
class OrderKey:
    entity: str
    key: str
    descending: bool


def parse_order_by(
    items, default_entity: str | None = None, entities: dict[str, str] | None = None
) -> list[OrderKey]:
    keys = []
    for item in items or ():
        text = item.strip()
        match = re.fullmatch(r"(.+?)(?:\s+(ASC|DESC))?", text, re.IGNORECASE)
        if not text or not match or not _tokens(match.group(1)) or len(_tokens(match.group(1))) != 1:
            raise InvalidQuery(f"Invalid order_by clause {item!r}: expected '<identifier> [ASC|DESC]'")
        entity, key = split_identifier(match.group(1).strip(), default_entity, entities)
        keys.append(OrderKey(entity, key, (match.group(2) or "ASC").upper() == "DESC"))
    return keys
