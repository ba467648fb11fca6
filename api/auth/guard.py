"""What each route needs: a permission on the experiment or registered model it is about.

Every MLflow route has a rule: which field of the request names its resource, and the level it
needs (MLflow's: READ to read, EDIT to change, MANAGE to delete or grant). A route without a rule
is for admins only, so a route added later is closed until someone decides who may use it.
Searches need no rule: they are filtered inside their query (``scope_of``). Unknown resources
pass to their handler, which answers 404 as without auth.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec
from starlette.requests import Request
from trackledger.api import protocol, validation
from trackledger.api.auth.accounts import EDIT, LEVEL_NAMES, MANAGE, READ
from trackledger.api.errors import MlflowError, invalid
from trackledger.api.http import decode_once
from trackledger.api.threads import blocking
from trackledger.projections import logged_models as logged_model_reads
from trackledger.projections.scope import Scope


class Keys(msgspec.Struct):
    """The fields that name what a request is about (others are skipped while decoding)."""

    experiment_id: str | int | None = None
    experiment_name: str | None = None
    run_id: str | None = None
    run_uuid: str | None = None
    run_ids: list[str] = []
    experiment_ids: list[str] = []
    source_run_id: str | None = None
    name: str | None = None
    model_id: str | None = None


_KEYS = msgspec.json.Decoder(Keys)


def denied(message: str = "Permission denied") -> MlflowError:
    return MlflowError(message, "PERMISSION_DENIED")


def user_of(request: Request) -> str | None:
    """The verified user of the request (None with auth off)."""
    return request.scope.get("trackledger.user")


def require_admin(ctx, request: Request) -> None:
    """For admin-only routes (webhooks, user administration): a 403 unless the verified user is
    an admin. With auth off, everyone is."""
    if ctx.auth is not None and not ctx.auth.accounts.is_admin(user_of(request)):
        raise denied("Only an admin may do this")


def scope_of(ctx, request: Request) -> Scope | None:
    """What the request's user may read, for a query's WHERE; None: everything."""
    if ctx.auth is None:
        return None
    return ctx.auth.accounts.scope(user_of(request) or "")


def readable(ctx, request: Request, experiment_ids: list[str]) -> list[str]:
    """The experiments of a search the user may read: the search then covers only those, so its
    paging and counts are right."""
    scope = scope_of(ctx, request)
    return experiment_ids if scope is None else [e for e in experiment_ids if e in scope.experiments]


# An artifact path belongs to the experiment it starts with (MLflow's layout: <experiment>/<run>/
# artifacts/..., <experiment>/models/<model>/artifacts/...), and to the run or logged model in it.
_ARTIFACT_PATH = re.compile(
    r"(?P<exp>[0-9]+)(?:/(?P<run>[0-9a-f]{32})(?=/|$)|/models/(?P<model>m-[0-9a-f]{32})(?=/|$))?(?:/|$)"
)


async def authorize_artifact(ctx, request: Request, path: str, needed: int) -> None:
    """403 unless the user holds ``needed`` on the experiment the (normalised) ``path`` is in, and
    the run or logged model it names is in that experiment. Paths outside any experiment's
    (the root, custom layouts) are for admins."""
    if ctx.auth is None:
        return
    username = user_of(request) or ""
    accounts = ctx.auth.accounts
    if accounts.is_admin(username):
        return
    m = _ARTIFACT_PATH.match(path)
    if m is None:
        raise denied(f"Only an admin may use artifact paths outside an experiment's: '{path}'")
    experiment_id = m["exp"]
    if m["run"] and (found := run_resource(ctx, m["run"])) and found[1] != experiment_id:
        raise denied(f"Run {m['run']} is not in experiment {experiment_id}")
    model = await blocking(logged_model_resource, ctx, m["model"]) if m["model"] else None
    if model and model[1] != experiment_id:
        raise denied(f"Logged model {m['model']} is not in experiment {experiment_id}")
    check(accounts, username, "experiment", experiment_id, needed)


# Resolvers: the (resource type, resource id) pairs a request is about ------------------------


def _experiment_key(value: str | int) -> tuple[str, str]:
    """The experiment a handler reads ``value`` as ("007" is experiment 7); a value it refuses
    is checked as given."""
    try:
        return ("experiment", validation.experiment_id(value))
    except MlflowError:
        return ("experiment", str(value))


def _experiment(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    return [] if keys.experiment_id is None else [_experiment_key(keys.experiment_id)]


def _experiments(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    return [_experiment_key(e) for e in keys.experiment_ids]


def _experiment_or_default(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    """runs/create: a run without an experiment goes to the Default one ("0"), as in MLflow."""
    return [_experiment_key(keys.experiment_id or "0")]


def _source_run(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    found = run_resource(ctx, keys.source_run_id) if keys.source_run_id else None
    return [found] if found else []


def _experiment_by_name(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    found = ctx.writes.index.experiment_by_name.get(keys.experiment_name or "")
    return [] if found is None else [("experiment", found)]


def _runs(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    ids = [*keys.run_ids, *filter(None, [keys.run_id or keys.run_uuid])]
    return [found for run_id in ids if (found := run_resource(ctx, run_id))]


def _logged_model(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    """Runs in a thread (see ``authorize``): the first lookup of a model reads the projection."""
    model_id = params.get("model_id") or keys.model_id
    found = logged_model_resource(ctx, model_id) if model_id else None
    return [found] if found else []


def _registered_model(ctx, keys: Keys, params) -> list[tuple[str, str]]:
    found = registered_model_resource(ctx, keys.name) if keys.name else None
    return [found] if found else []


def run_resource(ctx, run_id: str) -> tuple[str, str] | None:
    run = ctx.writes.index.runs.get(run_id)
    return None if run is None else ("experiment", run.experiment_id)


def logged_model_resource(ctx, model_id: str) -> tuple[str, str] | None:
    """Blocks: a model the write index has not met is read from the projection."""
    entry = ctx.writes.index.logged_models.get(model_id)
    if entry is not None:
        return ("experiment", entry.experiment_id)
    ctx.projection.flush()
    model = ctx.projection.query(logged_model_reads.logged_model, model_id)
    return None if model is None else ("experiment", model["info"]["experiment_id"])


def registered_model_resource(ctx, name: str) -> tuple[str, str] | None:
    entry = ctx.writes.index.registered_models.get(name)
    return None if entry is None else ("registered_model", entry.key)


Rule = tuple[tuple[Callable, int], ...]
ANYONE: Rule = ()  # any signed-in user: creates, and searches (filtered in their query)
_EXP, _EXP_NAME, _RUN, _LM, _RM = _experiment, _experiment_by_name, _runs, _logged_model, _registered_model

RULES: dict[tuple[str, str], Rule] = {
    ("POST", "experiments/create"): ANYONE,
    ("GET", "experiments/get"): ((_EXP, READ),),
    ("GET", "experiments/get-by-name"): ((_EXP_NAME, READ),),
    ("POST", "experiments/search"): ANYONE,
    ("GET", "experiments/search"): ANYONE,
    ("POST", "experiments/update"): ((_EXP, EDIT),),
    ("POST", "experiments/delete"): ((_EXP, MANAGE),),
    ("POST", "experiments/restore"): ((_EXP, MANAGE),),
    ("POST", "experiments/set-experiment-tag"): ((_EXP, EDIT),),
    ("POST", "experiments/delete-experiment-tag"): ((_EXP, EDIT),),
    ("POST", "runs/create"): ((_experiment_or_default, EDIT),),
    ("GET", "runs/get"): ((_RUN, READ),),
    ("POST", "runs/update"): ((_RUN, EDIT),),
    ("POST", "runs/delete"): ((_RUN, MANAGE),),
    ("POST", "runs/restore"): ((_RUN, MANAGE),),
    ("POST", "runs/search"): ANYONE,
    ("GET", "metrics/get-history"): ((_RUN, READ),),
    ("GET", "metrics/get-history-bulk-interval"): ((_RUN, READ),),
    ("GET", "metrics/get-history-bulk"): ((_RUN, READ),),
    ("GET", "artifacts/list"): ((_RUN, READ),),
    ("POST", "upload-artifact"): ((_RUN, EDIT),),
    ("POST", "experiments/search-datasets"): ((_experiments, READ),),
    ("POST", "runs/log-metric"): ((_RUN, EDIT),),
    ("POST", "runs/log-parameter"): ((_RUN, EDIT),),
    ("POST", "runs/set-tag"): ((_RUN, EDIT),),
    ("POST", "runs/delete-tag"): ((_RUN, EDIT),),
    ("POST", "runs/log-batch"): ((_RUN, EDIT),),
    ("POST", "runs/log-inputs"): ((_RUN, EDIT),),
    ("POST", "runs/outputs"): ((_RUN, EDIT),),
    ("POST", "logged-models"): ((_EXP, EDIT), (_source_run, READ)),
    ("POST", "logged-models/search"): ANYONE,
    ("GET", "logged-models/{model_id}"): ((_LM, READ),),
    ("PATCH", "logged-models/{model_id}"): ((_LM, EDIT),),
    ("DELETE", "logged-models/{model_id}"): ((_LM, MANAGE),),
    ("PATCH", "logged-models/{model_id}/tags"): ((_LM, EDIT),),
    ("DELETE", "logged-models/{model_id}/tags/{key}"): ((_LM, EDIT),),
    ("POST", "logged-models/{model_id}/params"): ((_LM, EDIT),),
    ("GET", "logged-models/{model_id}/artifacts/{kind}"): ((_LM, READ),),
    ("POST", "registered-models/create"): ANYONE,
    ("GET", "registered-models/get"): ((_RM, READ),),
    ("POST", "registered-models/rename"): ((_RM, EDIT),),
    ("PATCH", "registered-models/update"): ((_RM, EDIT),),
    ("DELETE", "registered-models/delete"): ((_RM, MANAGE),),
    ("GET", "registered-models/search"): ANYONE,
    ("POST", "registered-models/get-latest-versions"): ((_RM, READ),),
    ("GET", "registered-models/get-latest-versions"): ((_RM, READ),),
    ("POST", "registered-models/set-tag"): ((_RM, EDIT),),
    ("DELETE", "registered-models/delete-tag"): ((_RM, EDIT),),
    ("POST", "registered-models/alias"): ((_RM, EDIT),),
    ("GET", "registered-models/alias"): ((_RM, READ),),
    ("DELETE", "registered-models/alias"): ((_RM, EDIT),),
    ("POST", "model-versions/create"): ((_RM, EDIT), (_RUN, READ), (_LM, READ)),
    ("GET", "model-versions/get"): ((_RM, READ),),
    ("PATCH", "model-versions/update"): ((_RM, EDIT),),
    ("POST", "model-versions/transition-stage"): ((_RM, EDIT),),
    ("DELETE", "model-versions/delete"): ((_RM, MANAGE),),
    ("GET", "model-versions/search"): ANYONE,
    ("GET", "model-versions/get-download-uri"): ((_RM, READ),),
    ("POST", "model-versions/set-tag"): ((_RM, EDIT),),
    ("DELETE", "model-versions/delete-tag"): ((_RM, EDIT),),
}
_PATTERNS = [
    (re.compile(r"logged-models/(?P<model_id>[^/]+)$"), "logged-models/{model_id}"),
    (re.compile(r"logged-models/(?P<model_id>[^/]+)/tags$"), "logged-models/{model_id}/tags"),
    (re.compile(r"logged-models/(?P<model_id>[^/]+)/params$"), "logged-models/{model_id}/params"),
    (
        re.compile(r"logged-models/(?P<model_id>[^/]+)/artifacts/(?P<kind>directories|files)$"),
        "logged-models/{model_id}/artifacts/{kind}",
    ),
    (
        re.compile(r"logged-models/(?P<model_id>[^/]+)/tags/(?P<key>.+)$"),
        "logged-models/{model_id}/tags/{key}",
    ),
]


# Routes whose body is a file, not JSON: what they are about is in the query string.
_FILE_BODIES = frozenset({("POST", "upload-artifact")})
# The logging routes' bodies are decoded here as their handler decodes them (``decode_once``), so
# a log-batch's thousand points are parsed once, not once for its run id and again for its points.
_RUN_BODIES: dict[tuple[str, str], type[protocol.RunRef]] = {
    ("POST", "runs/log-metric"): protocol.LogMetric,
    ("POST", "runs/log-parameter"): protocol.LogParam,
    ("POST", "runs/set-tag"): protocol.SetTag,
    ("POST", "runs/log-batch"): protocol.LogBatch,
}


async def _keys(request: Request, rest: str) -> Keys:
    body = b"" if (request.method, rest) in _FILE_BODIES else await request.body()
    if request.method == "GET" or not body.strip():
        q = request.query_params
        try:
            return Keys(
                experiment_id=q.get("experiment_id"),
                experiment_name=q.get("experiment_name"),
                run_id=q.get("run_id"),
                run_uuid=q.get("run_uuid"),
                run_ids=[*q.getlist("run_ids"), *q.getlist("run_id")[1:]],  # get-history-bulk: several
                source_run_id=q.get("source_run_id"),
                name=q.get("name"),
                model_id=q.get("model_id"),
            )
        except msgspec.ValidationError as exc:
            raise invalid(f"Invalid request: {exc}") from None
    if (kind := _RUN_BODIES.get((request.method, rest))) is not None:
        try:
            decoded = decode_once(request, kind, body)
        except MlflowError:
            pass  # the handler refuses it after the permission check, as for any other route
        else:
            return Keys(run_id=decoded.run_id, run_uuid=decoded.run_uuid)
    try:
        return _KEYS.decode(body)
    except msgspec.DecodeError as exc:
        raise invalid(f"Invalid request body: {exc}") from None


def _rule(method: str, rest: str) -> tuple[Rule | None, dict]:
    """The rule of a route (None: admins only) and the parts of its path the rule reads."""
    rule = RULES.get((method, rest))
    if rule is None:
        for pattern, template in _PATTERNS:
            if m := pattern.match(rest):
                return RULES.get((method, template)), m.groupdict()
    return rule, {}


async def authorize(ctx, request: Request, rest: str) -> None:
    """Raise 403 unless the request's user may do what this MLflow route does."""
    username = user_of(request) or ""
    accounts = ctx.auth.accounts
    if accounts.is_admin(username):
        return
    rule, params = _rule(request.method, rest)
    if rule is None:
        raise denied(f"Only an admin may use {request.method} {request.url.path}")
    if not rule:
        return
    keys = await _keys(request, rest)
    for resolve, needed in rule:
        if resolve is _logged_model:
            resources = await blocking(resolve, ctx, keys, params)
        else:
            resources = resolve(ctx, keys, params)
        for resource_type, resource_id in resources:
            check(accounts, username, resource_type, resource_id, needed)


def permits(ctx, request: Request, method: str, rest: str, **fields) -> bool:
    """Whether ``authorize`` would let the request's user call the MLflow route ``rest`` with a
    body naming ``fields`` (Keys' names): the web page asks it to show only the controls its user
    may use. Blocks (a logged model may be read from the projection): call it off the event loop."""
    if ctx.auth is None:
        return True
    username = user_of(request) or ""
    accounts = ctx.auth.accounts
    if accounts.is_admin(username):
        return True
    rule, params = _rule(method, rest)
    if rule is None:
        return False
    keys = Keys(**fields)
    try:
        for resolve, needed in rule:
            for resource_type, resource_id in resolve(ctx, keys, params):
                check(accounts, username, resource_type, resource_id, needed)
    except MlflowError:
        return False
    return True


def authorize_registered_model(ctx, request: Request, name: str | None, needed: int) -> None:
    """For routes outside the MLflow dispatcher that name a registered model."""
    if ctx.auth is not None and name and (found := registered_model_resource(ctx, name)):
        _check_user(ctx, request, *found, needed)


def _check_user(ctx, request: Request, resource_type: str, resource_id: str, needed: int) -> None:
    username = user_of(request) or ""
    if not ctx.auth.accounts.is_admin(username):
        check(ctx.auth.accounts, username, resource_type, resource_id, needed)


def check(accounts, username: str, resource_type: str, resource_id: str, needed: int) -> None:
    have = accounts.level(username, resource_type, resource_id)
    if have < needed:
        raise denied(
            f"Permission denied: {LEVEL_NAMES[needed]} on {resource_type} {resource_id} is needed, "
            f"user {username} has {LEVEL_NAMES[have]}"
        )
