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


def version_creators(ctx: ServerContext, key: str, versions: list[int]) -> dict[int, dict]:
    """Who created each of ``versions``, from the ledger: ``{version: {"actor", "verified"}}``."""
    rows = ctx.projection.read_records(
        """SELECT version, actor, actor_verified FROM events
           WHERE registered_model_id = ? AND type = 'model_version_created' AND list_contains(?, version)""",
        [key, versions],
    )
    return {r["version"]: {"actor": r["actor"], "verified": r["actor_verified"]} for r in rows}


def version_pages(ctx: ServerContext, key: str, versions: list[int], per_page: int) -> dict[int, int]:
    """The page of the model's versions list (live versions, newest first, ``per_page`` to a page)
    each of ``versions`` is on, for links to a version on another page."""
    rows = ctx.projection.read(
        """SELECT version, (row_number() OVER (ORDER BY version DESC) - 1) // ? + 1 FROM model_versions
           WHERE registered_model_id = ? AND NOT deleted QUALIFY list_contains(?, version)""",
        [per_page, key, versions],
    )
    return dict(rows)


def run_registrations(ctx: ServerContext, run_id: str) -> list[dict]:
    """The live model versions whose source run is ``run_id``, with their aliases."""
    return ctx.projection.read_records(
        f"""SELECT r.name, v.version, {VERSION_ALIASES} AS aliases FROM {VERSIONS}
            WHERE coalesce(v.run_id, m.source_run_id) = ? AND NOT v.deleted ORDER BY r.name, v.version""",
        [run_id],
    )


def version_files(ctx: ServerContext, versions: list[dict]) -> dict[str, list[dict]]:
    """The files of each version (below the artifact root its source names), by version number,
    each with the URL that downloads it through ``/model-versions/get-artifact``; none for a
    version whose files are not in this server's artifact store. Two reads for all the versions."""
    roots = _source_roots(ctx, versions)
    prefixes = {
        v["version"]: roots[v["version"]].removeprefix(ARTIFACT_URI_PREFIX).strip("/") + "/"
        for v in versions
        if (roots.get(v["version"]) or "").startswith(ARTIFACT_URI_PREFIX)
    }
    rows = ctx.projection.read(
        """SELECT p.prefix, a.path, a.size FROM (SELECT unnest(?::VARCHAR[]) AS prefix) p
           JOIN artifacts a ON starts_with(a.path, p.prefix) ORDER BY p.prefix, a.path LIMIT ?""",
        [sorted(set(prefixes.values())), MAX_ARTIFACT_FILES],
    )
    found: dict[str, list[tuple[str, int]]] = {}
    for prefix, path, size in rows:
        found.setdefault(prefix, []).append((path[len(prefix) :], size))
    files: dict[str, list[dict]] = {}
    for v in versions:
        files[v["version"]] = [
            {"path": relative, "size": size, "url": _download_url(v, relative)}
            for relative, size in found.get(prefixes.get(v["version"], ""), [])
        ]
    return files


def _download_url(version: dict, relative: str) -> str:
    query = urllib.parse.urlencode({"name": version["name"], "version": version["version"], "path": relative})
    return f"{VERSION_DOWNLOAD}?{query}"


def _source_roots(ctx: ServerContext, versions: list[dict]) -> dict[str, str]:
    """The artifact root URI each version's source names (as ``/model-versions/get-artifact`` reads
    it), by version number; absent when its run or logged model is not readable."""
    rows = ctx.projection.read(
        """SELECT 'models', model_id, artifact_location FROM logged_models WHERE list_contains(?, model_id)
           UNION ALL SELECT 'runs', run_id, artifact_uri FROM runs WHERE list_contains(?, run_id)""",
        [
            [v["model_id"] for v in versions if v.get("model_id")],
            [v["run_id"] for v in versions if v.get("run_id")],
        ],
    )
    owners = {(kind, owner): uri for kind, owner, uri in rows}
    roots = {}
    for v in versions:
        parsed = urllib.parse.urlparse(v["source"])
        if parsed.scheme == "models" and v.get("model_id"):
            root = owners.get(("models", v["model_id"]))
        elif parsed.scheme == "runs" and v.get("run_id"):
            root = owners.get(("runs", v["run_id"]))
            inner = parsed.path.strip("/").split("/", 1)[1:]  # the path after the run id
            if root is not None and inner:
                root = root.rstrip("/") + "/" + inner[0].strip("/")
        else:
            root = v["source"]
        if root is not None:
            roots[v["version"]] = root
    return roots
