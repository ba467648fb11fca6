"""Reads of the model registry, by name: registered models, versions, aliases and their searches.

The tables are keyed by registered_model_id (see ``ledger.events``); every read answers by the
model's current name, as MLflow does. Deleted versions stay in ``model_versions`` (their numbers
are never used again) and are left out of every answer.
"""

from __future__ import annotations

from dataclasses import replace

from trackledger.projections.filters import (
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Clause,
    InvalidQuery,
    parse_filter,
    parse_order_by,
)
from trackledger.projections.rows import one_row
from trackledger.projections.search import Attribute, Child, Query, Searchable

STAGES = ("None", "Staging", "Production", "Archived")
IS_PROMPT = "mlflow.prompt.is_prompt"
ENTITIES = {"attribute": "attribute", "tag": "tag", "tags": "tag"}
TAG_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")

_KEY_VALUES = "list({'key': key, 'value': value} ORDER BY key)"
MODEL_COLUMNS = f"""r.registered_model_id, r.name, r.creation_timestamp, r.last_updated_timestamp,
  r.description,
  (SELECT {_KEY_VALUES} FROM registered_model_tags t WHERE t.registered_model_id = r.registered_model_id),
  (SELECT list({{'alias': alias, 'version': version::VARCHAR}} ORDER BY alias)
   FROM registered_model_aliases a WHERE a.registered_model_id = r.registered_model_id)"""
VERSION_COLUMNS = f"""r.name, v.version, v.creation_timestamp, v.last_updated_timestamp, v.description,
  v.current_stage, v.source, coalesce(v.run_id, m.source_run_id), v.model_id,
  (SELECT {_KEY_VALUES} FROM model_version_tags t
   WHERE t.registered_model_id = v.registered_model_id AND t.version = v.version)"""
VERSION_ALIASES = """(SELECT list(alias ORDER BY alias) FROM registered_model_aliases a
   WHERE a.registered_model_id = v.registered_model_id AND a.version = v.version)"""
VERSIONS = """model_versions v JOIN registered_models r USING (registered_model_id)
  LEFT JOIN logged_models m ON m.model_id = v.model_id"""
# MLflow's latest versions: the newest live version of each stage. A model read alone lists the
# stages in the order of their oldest live version; a search, in the order of their names.
_LATEST_SELECT = """
SELECT * EXCLUDE (rn, first_version) FROM (
  SELECT v.registered_model_id, {columns}, {aliases},
    row_number() OVER (PARTITION BY v.registered_model_id, v.current_stage ORDER BY v.version DESC) AS rn,
    min(v.version) OVER (PARTITION BY v.registered_model_id, v.current_stage) AS first_version
  FROM {versions} WHERE v.registered_model_id = ANY(?::VARCHAR[]) AND NOT v.deleted)
WHERE rn = 1 ORDER BY registered_model_id, {order}"""
LATEST_SELECT = {
    order: _LATEST_SELECT.format(
        columns=VERSION_COLUMNS, aliases=VERSION_ALIASES, versions=VERSIONS, order=order
    )
    for order in ("first_version", "current_stage")
}

_MODEL_TAGS = Child("registered_model_tags", "{x}.registered_model_id = r.registered_model_id")
REGISTERED_MODELS = Searchable("registered_models r", {"name": Attribute("r.name")}, {"tag": _MODEL_TAGS})
MODEL_VERSIONS = Searchable(
    VERSIONS,
    {
        "name": Attribute("r.name"),
        "version_number": Attribute("v.version", numeric=True),
        "run_id": Attribute("coalesce(v.run_id, m.source_run_id)"),
        "source_path": Attribute("v.source"),
    },
    {
        "tag": Child(
            "model_version_tags",
            "{x}.registered_model_id = v.registered_model_id AND {x}.version = v.version",
        )
    },
)
# The tags whose prompt tag leaves a searched row out: a version tagged as a prompt leaves every
# version of its model out.
PROMPT_TAGS = {
    "model": _MODEL_TAGS,
    "version": Child("model_version_tags", "{x}.registered_model_id = v.registered_model_id"),
}
LIST_ATTRIBUTES = {"model": ("name",), "version": ("name", "run_id")}
NUMERIC_ATTRIBUTES = {"version_number", "creation_timestamp", "last_updated_timestamp"}
MODEL_ORDER = {
    "name": "r.name",
    "timestamp": "r.last_updated_timestamp",
    "last_updated_timestamp": "r.last_updated_timestamp",
}
VERSION_ORDER = {
    "name": "r.name",
    "version_number": "v.version",
    "creation_timestamp": "v.creation_timestamp",
    "last_updated_timestamp": "v.last_updated_timestamp",
}
VERSION_DEFAULT_ORDER = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")


def canonical_stage(stage: str) -> str:
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise InvalidQuery(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}.")


def _version_dict(row, aliases=None) -> dict:
    name, version, created, updated, description, stage, source, run_id, model_id, tags = row
    out = {
        "name": name,
        "version": str(version),
        "creation_timestamp": created,
        "last_updated_timestamp": updated,
        "current_stage": stage,
        "source": source,
        "run_id": run_id or "",
        "status": "READY",
        "run_link": "",
    }
    if model_id:
        out["model_id"] = model_id
    if description is not None:  # an update without a description clears it, as in MLflow
        out["description"] = description
    if tags:
        out["tags"] = tags
    if aliases:
        out["aliases"] = aliases
    return out


def model_version(con, name: str, version: int) -> dict | None:
    row = one_row(
        con,
        f"SELECT {VERSION_COLUMNS}, {VERSION_ALIASES} FROM {VERSIONS} "
        "WHERE r.name = ? AND v.version = ? AND NOT v.deleted",
        [name, version],
    )
    return _version_dict(row[:-1], row[-1]) if row else None


def model_version_by_alias(con, name: str, alias: str) -> dict | None:
    """The version an alias points to; ``latest`` (any case) is the newest live version, as in MLflow."""
    if alias.lower() == "latest":
        sql = f"""SELECT max(v.version) FROM {VERSIONS} WHERE r.name = ? AND NOT v.deleted
                  HAVING count(*) > 0"""
        row = one_row(con, sql, [name])
    else:
        sql = """SELECT a.version FROM registered_model_aliases a
                 JOIN registered_models r USING (registered_model_id) WHERE r.name = ? AND a.alias = ?"""
        row = one_row(con, sql, [name, alias])
    return model_version(con, name, row[0]) if row else None


def model_versions_page(con, name: str, offset: int, limit: int, scope=None) -> tuple[list[dict], int]:
    """Live versions ``offset`` to ``offset + limit`` of the model, newest first, with their aliases,
    and how many live versions it has in all (for a pager). ``scope``: only a model it may read."""
    query = MODEL_VERSIONS.query().restrict("r.name = ?", name).restrict("NOT v.deleted")
    if scope is not None:
        query.restrict(*scope.registered_model_condition("v.registered_model_id"))
    query.then_by("v.version DESC")
    sql = query.sql(f"{VERSION_COLUMNS}, {VERSION_ALIASES}, count(*) OVER ()", limit=limit, offset=offset)
    rows = con.execute(sql.text, list(sql.params)).fetchall()
    if rows:
        total = rows[0][-1]
    else:  # past the last page, or none at all
        count = query.sql("count(*)", ordered=False)
        ((total,),) = con.execute(count.text, list(count.params)).fetchall()
    return [_version_dict(row[:-2], row[-2]) for row in rows], total


def _latest_versions(con, keys: list[str], order: str = "first_version") -> dict[str, list[tuple]]:
    """Each model's latest versions (rows of VERSION_COLUMNS and the aliases), by model key, in
    ``order``: ``first_version`` or ``current_stage``."""
    found: dict[str, list[tuple]] = {key: [] for key in keys}
    for row in con.execute(LATEST_SELECT[order], [keys]).fetchall():
        found[row[0]].append(row[1:])
    return found


def _model_dicts(con, rows, order: str = "first_version") -> list[dict]:
    latest = _latest_versions(con, [row[0] for row in rows], order)
    models = []
    for key, name, created, updated, description, tags, aliases in rows:
        model = {"name": name, "creation_timestamp": created, "last_updated_timestamp": updated}
        if description:
            model["description"] = description
        if latest[key]:
            # MLflow leaves the aliases out of a model's latest versions.
            model["latest_versions"] = [_version_dict(row[:-1]) for row in latest[key]]
        if tags:
            model["tags"] = tags
        if aliases:
            model["aliases"] = aliases
        models.append(model)
    return models


def registered_model(con, name: str) -> dict | None:
    row = one_row(con, f"SELECT {MODEL_COLUMNS} FROM registered_models r WHERE r.name = ?", [name])
    return _model_dicts(con, [row])[0] if row else None


def latest_versions(con, name: str, stages=()) -> list[dict] | None:
    """The model's latest version of each of ``stages`` (any case; all when empty), with their
    aliases; None if there is no such model."""
    row = one_row(con, "SELECT registered_model_id FROM registered_models WHERE name = ?", [name])
    if row is None:
        return None
    wanted = {canonical_stage(stage) for stage in stages} or set(STAGES)
    rows = _latest_versions(con, [row[0]])[row[0]]
    return [_version_dict(r[:-1], r[-1]) for r in rows if r[5] in wanted]


def registry_index(con) -> list[tuple]:
    """(name, registered_model_id, version, current_stage, deleted) of every model and version
    (version None for a model without any), for the write path's index."""
    return con.execute(
        """SELECT r.name, r.registered_model_id, v.version, v.current_stage, v.deleted
           FROM registered_models r LEFT JOIN model_versions v USING (registered_model_id)"""
    ).fetchall()


# Searches --------------------------------------------------------------------------------


def _without_prompts(clauses: list[Clause]) -> tuple[list[Clause], bool]:
    """MLflow's searches leave prompts (models tagged ``mlflow.prompt.is_prompt`` = 'true') out,
    and ignore filters on that tag, unless the first one asks for prompts. Returns the clauses to
    apply and whether prompts are left out."""
    for clause in clauses:
        if clause.entity == "tag" and clause.key == IS_PROMPT:
            value = str(clause.value).lower()
            if (clause.comparator, value) in (("=", "true"), ("!=", "false")):
                return clauses, False
            break
    return [c for c in clauses if not (c.entity == "tag" and c.key == IS_PROMPT)], True


def _checked_attribute(clause: Clause, searchable: Searchable, lists: tuple[str, ...]) -> Clause:
    """An attribute clause as the compiler takes it (numbers as floats), refused with MLflow's
    messages."""
    attributes = searchable.attributes
    if clause.key not in attributes:
        raise InvalidQuery(
            f"Invalid attribute key '{clause.key}' specified. Valid keys are '{set(attributes)}'"
        )
    if isinstance(clause.value, tuple) and clause.key not in lists:
        raise InvalidQuery(
            f"Only {sorted(lists)} attributes support comparison with a list of quoted string values."
        )
    if attributes[clause.key].numeric:
        if clause.comparator not in NUMERIC_COMPARATORS:
            raise InvalidQuery(f"Invalid comparator for attribute {clause.key}: {clause.comparator}")
        try:
            number = float(clause.value)
        except (TypeError, ValueError):
            number = None
        if number is None or not number.is_integer():
            raise InvalidQuery(f"Invalid value for numeric attribute '{clause.key}': {clause.value!r}")
        return replace(clause, value=number)
    if isinstance(clause.value, float):
        raise InvalidQuery(
            f"Only the '{NUMERIC_ATTRIBUTES}' attributes support comparison with numeric values."
        )
    if clause.comparator not in STRING_COMPARATORS:
        raise InvalidQuery(f"Invalid comparator for attribute: {clause.comparator}")
    return clause


def _shown(value) -> str:
    """A filter value about as it was written."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else f"'{value}'"


def _filter(query: Query, filter, kind: str) -> None:
    """A registry filter (``kind``: "model" or "version"), refused with MLflow's messages."""
    clauses, no_prompts = _without_prompts(parse_filter(filter, "attribute", ENTITIES))
    for clause in clauses:
        if clause.entity == "attribute":
            clause = _checked_attribute(clause, query.searchable, LIST_ATTRIBUTES[kind])
        else:
            if clause.value is not None and not isinstance(clause.value, str):
                raise InvalidQuery(
                    "Expected a quoted string value for tag (e.g. 'my-value'). "
                    f"Got value {_shown(clause.value)}"
                )
            if clause.comparator not in TAG_COMPARATORS:
                raise InvalidQuery(f"Invalid comparator for tag: {clause.comparator}")
        query.restrict(query.condition(clause))
    if no_prompts:
        tags = PROMPT_TAGS[kind]
        query.restrict(
            f"NOT EXISTS (SELECT 1 FROM {tags.table} x WHERE {tags.link.format(x='x')} "
            "AND x.key = ? AND x.value = 'true')",
            IS_PROMPT,
        )


def _order(
    query: Query, order_by, columns: dict[str, str], ties: tuple[tuple[str, str], ...], invalid
) -> None:
    """MLflow's registry order_by, then its tie-breaks (key, direction) for the keys not ordered
    by already; ``invalid(key)`` is the error message for another key."""
    seen = set()
    for key in parse_order_by(order_by, "attribute", ENTITIES):
        if key.entity != "attribute" or key.key not in columns:
            raise InvalidQuery(invalid(key.key))
        column = columns[key.key]
        if column in seen:
            raise InvalidQuery(f"`order_by` contains duplicate fields: {list(order_by)}")
        seen.add(column)
        query.then_by(f"{column} {'DESC' if key.descending else 'ASC'}")
    for key, direction in ties:
        if columns[key] not in seen:
            query.then_by(f"{columns[key]} {direction}")


def _invalid_model_order(key: str) -> str:
    return f"Invalid order by key '{key}' specified. Valid keys are '{{'name', 'timestamp'}}'"


def _invalid_version_order(key: str) -> str:
    return f"Invalid attribute key '{key}' specified. Valid keys are '{set(VERSION_ORDER)}'"


def search_registered_models(con, filter=None, order_by=(), max_results=100, page_token=None, scope=None):
    """``scope``: only the models it may read (see ``projections.scope``)."""
    query = REGISTERED_MODELS.query()
    if scope is not None:
        query.restrict(*scope.registered_model_condition("r.registered_model_id"))
    _filter(query, filter, "model")
    _order(query, order_by, MODEL_ORDER, (("name", "ASC"),), _invalid_model_order)
    rows, token = query.page(con, MODEL_COLUMNS, max_results, page_token)
    return _model_dicts(con, rows, "current_stage"), token


def search_model_versions(con, filter=None, order_by=(), max_results=10_000, page_token=None, scope=None):
    """As in MLflow, the versions found come without their aliases, and a version tagged as a
    prompt leaves every version of its model out. ``scope``: only the models it may read."""
    query = MODEL_VERSIONS.query().restrict("NOT v.deleted")
    if scope is not None:
        query.restrict(*scope.registered_model_condition("v.registered_model_id"))
    _filter(query, filter, "version")
    ties = (("name", "ASC"), ("version_number", "DESC"))
    _order(query, order_by or VERSION_DEFAULT_ORDER, VERSION_ORDER, ties, _invalid_version_order)
    rows, token = query.page(con, VERSION_COLUMNS, max_results, page_token)
    return [_version_dict(row) for row in rows], token
