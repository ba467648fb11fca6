"""Reads of the model registry the web page needs beyond ``projections.registry``: one SQL statement
each, against the projection's tables, inside the page's read scope (``projections.scope``)."""

from __future__ import annotations

import urllib.parse

from trackledger.api.context import ServerContext
from trackledger.api.web.reads import ARTIFACT_URI_PREFIX, MAX_ARTIFACT_FILES
from trackledger.projections.registry import VERSION_ALIASES, VERSIONS

VERSION_DOWNLOAD = "/model-versions/get-artifact"  # checks READ on the model and on its files


def model_key(ctx: ServerContext, name: str) -> str | None:
    """The model's registered_model_id (the key its events carry), None if it is not readable."""
    rows = ctx.projection.read("SELECT registered_model_id FROM registered_models WHERE name = ?", [name])
    return rows[0][0] if rows else None


def model_names(ctx: ServerContext) -> list[str]:
    """The models one may register a version in (those the reader may see), for suggestions."""
    return [name for (name,) in ctx.projection.read("SELECT name FROM registered_models ORDER BY name")]


def version_creators(ctx: ServerContext, key: str) -> dict[int, dict]:
    """Who created each version, from the ledger: ``{version: {"actor", "verified"}}``."""
    rows = ctx.projection.read_records(
        """SELECT version, actor, actor_verified FROM events
           WHERE registered_model_id = ? AND type = 'model_version_created'""",
        [key],
    )
    return {r["version"]: {"actor": r["actor"], "verified": r["actor_verified"]} for r in rows}


def run_registrations(ctx: ServerContext, run_id: str) -> list[dict]:
    """The live model versions whose source run is ``run_id``, with their aliases."""
    return ctx.projection.read_records(
        f"""SELECT r.name, v.version, {VERSION_ALIASES} AS aliases FROM {VERSIONS}
            WHERE coalesce(v.run_id, m.source_run_id) = ? AND NOT v.deleted ORDER BY r.name, v.version""",
        [run_id],
    )


def version_files(ctx: ServerContext, version: dict) -> list[dict]:
    """The files of a version (below the artifact root its source names), each with the URL that
    downloads it through ``/model-versions/get-artifact``; none when they are not in this server's
    artifact store."""
    root = _source_root(ctx, version)
    if root is None or not root.startswith(ARTIFACT_URI_PREFIX):
        return []
    prefix = root.removeprefix(ARTIFACT_URI_PREFIX).strip("/") + "/"
    rows = ctx.projection.read_records(
        "SELECT path, size FROM artifacts WHERE starts_with(path, ?) ORDER BY path LIMIT ?",
        [prefix, MAX_ARTIFACT_FILES],
    )
    files = []
    for row in rows:
        relative = row["path"][len(prefix) :]
        query = urllib.parse.urlencode(
            {"name": version["name"], "version": version["version"], "path": relative}
        )
        files.append({"path": relative, "size": row["size"], "url": f"{VERSION_DOWNLOAD}?{query}"})
    return files


def _source_root(ctx: ServerContext, version: dict) -> str | None:
    """The artifact root URI a version's source names (as ``/model-versions/get-artifact`` reads it)."""
    source = version["source"]
    scheme = urllib.parse.urlparse(source).scheme
    if scheme == "models" and version.get("model_id"):
        rows = ctx.projection.read(
            "SELECT artifact_location FROM logged_models WHERE model_id = ?", [version["model_id"]]
        )
        return rows[0][0] if rows else None
    if scheme == "runs" and version.get("run_id"):
        rows = ctx.projection.read("SELECT artifact_uri FROM runs WHERE run_id = ?", [version["run_id"]])
        if not rows:
            return None
        inner = urllib.parse.urlparse(source).path.lstrip("/").split("/", 1)[1:]
        return rows[0][0].rstrip("/") + ("/" + inner[0].strip("/") if inner and inner[0].strip("/") else "")
    return source
