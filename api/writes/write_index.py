"""What writes are checked against: the entities that exist and their lifecycles, in memory.

Loaded from the projection at start-up, then kept current by the write service, which is the
only writer (one server per state dir) and applies every staged event to it. What is not kept
for every entity (a run's params and, for runs loaded at start-up, its user; logged models) is
read from the projection on first use; every method is called under the write lock, so after a
flush the projection holds every staged event. While a write is decided on the event loop
(``in_memory_only``), such a read raises ``NotInMemory`` instead: the write service then decides
it again in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trackledger.ledger.events import (
    BatchLogged,
    Event,
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    LoggedModelCreated,
    ModelVersionCreated,
    ModelVersionDeleted,
    ModelVersionStageChanged,
    PermissionGranted,
    PermissionRevoked,
    RegisteredModelCreated,
    RegisteredModelDeleted,
    RegisteredModelRenamed,
    RunCreated,
    RunDeleted,
    RunRestored,
    TokenCreated,
    TokenRevoked,
    UserCreated,
    UserDeleted,
)
from trackledger.projections import experiments as experiment_reads
from trackledger.projections import logged_models as logged_model_reads
from trackledger.projections import registry as registry_reads
from trackledger.projections import runs as run_reads

PARAM_CACHE_RUNS = 20_000


class NotInMemory(Exception):
    """Deciding this write needs a projection read, which the event loop must not wait for."""


@dataclass(slots=True)
class RunEntry:
    experiment_id: str
    lifecycle: str
    user: str | None = None


@dataclass(slots=True)
class ExperimentEntry:
    name: str
    lifecycle: str
    artifact_location: str

    def run_artifact_uri(self, run_id: str) -> str:
        """Where a run of this experiment keeps its artifacts (MLflow's layout)."""
        return f"{self.artifact_location.rstrip('/')}/{run_id}/artifacts"

    def model_artifact_uri(self, model_id: str) -> str:
        """Where a logged model of this experiment keeps its artifacts (MLflow's layout)."""
        return f"{self.artifact_location.rstrip('/')}/models/{model_id}/artifacts"


@dataclass(slots=True)
class LoggedModelEntry:
    experiment_id: str
    source_run_id: str | None  # the run that logged it: its files are attributed to that run's user


@dataclass(slots=True)
class RegisteredModelEntry:
    key: str  # registered_model_id, or the name for models created before renames existed
    latest_version: int = 0  # the highest version number ever used, deleted versions included
    stages: dict[int, str] = field(default_factory=dict)  # live version -> its stage


class WriteIndex:
    def __init__(self, projection) -> None:
        self._projection = projection
        self.in_memory_only = False
        self.runs: dict[str, RunEntry] = {}
        self.experiments: dict[str, ExperimentEntry] = {}
        self.experiment_by_name: dict[str, str] = {}
        self.params: dict[str, dict[str, str]] = {}
        self.logged_models: dict[str, LoggedModelEntry] = {}  # loaded on first use
        self.registered_models: dict[str, RegisteredModelEntry] = {}  # by current name
        # Accounts (see writes.accounts): live users, their explicit grants, their unrevoked tokens.
        self.users: set[str] = set()
        self.grants: set[tuple[str, str, str]] = set()  # (username, resource_type, resource_id)
        self.tokens: dict[str, str] = {}  # token_id -> username

    def load(self) -> None:
        projection = self._projection
        token = None
        while True:
            page, token = projection.query(
                experiment_reads.search_experiments, view_type="ALL", max_results=50_000, page_token=token
            )
            for exp in page:
                self._add_experiment(
                    exp["experiment_id"],
                    exp["name"],
                    exp.get("lifecycle_stage", "active"),
                    exp["artifact_location"],
                )
            if not token:
                break
        for run_id, (experiment_id, lifecycle) in projection.query(run_reads.runs_index).items():
            self.runs[run_id] = RunEntry(str(experiment_id), lifecycle)
        for name, key, version, stage, deleted in projection.query(registry_reads.registry_index):
            model = self.registered_models.setdefault(name, RegisteredModelEntry(key))
            if version is not None:
                model.latest_version = max(model.latest_version, version)
                if not deleted:
                    model.stages[version] = stage
        self.load_accounts()

    def load_accounts(self) -> None:
        """Only the accounts (the offline ``users`` and ``tokens`` commands decide with these)."""
        projection = self._projection
        self.users = {username for (username,) in projection.read("SELECT username FROM users")}
        self.grants = set(projection.read("SELECT username, resource_type, resource_id FROM permissions"))
        self.tokens = dict(projection.read("SELECT token_id, username FROM tokens WHERE NOT revoked"))

    def next_experiment_id(self) -> str:
        return str(max((int(i) for i in self.experiments), default=-1) + 1)

    def _add_experiment(self, experiment_id: str, name: str, lifecycle: str, location: str) -> None:
        self.experiments[experiment_id] = ExperimentEntry(name, lifecycle, location)
        self.experiment_by_name[name] = experiment_id

    def run_lifecycle(self, run_id: str) -> str | None:
        run = self.runs.get(run_id)
        return None if run is None else run.lifecycle

    def _set_experiment_lifecycle(self, experiment_id: str, lifecycle: str) -> None:
        """As in MLflow, deleting an experiment deletes its runs, and restoring it restores them all."""
        self.experiments[experiment_id].lifecycle = lifecycle
        for run in self.runs.values():
            if run.experiment_id == experiment_id:
                run.lifecycle = lifecycle

    def _cache_params(self, run_id: str, params: dict[str, str]) -> dict[str, str]:
        if len(self.params) >= PARAM_CACHE_RUNS:
            self.params.pop(next(iter(self.params)))
        self.params[run_id] = params
        return params

    # Read from the projection on first use ------------------------------------------------

    def _read_projection(self):
        if self.in_memory_only:
            raise NotInMemory
        return self._projection

    def run_params(self, run_id: str) -> dict[str, str]:
        cached = self.params.get(run_id)
        if cached is None:
            projection = self._read_projection()
            projection.flush()
            cached = self._cache_params(run_id, dict(projection.query(run_reads.params, run_id)))
        return cached

    def run_user(self, run_id: str | None) -> str:
        """The user a run's events are attributed to when the request claims none."""
        run = self.runs.get(run_id) if run_id else None
        if run is None:
            return "unknown"
        if run.user is None:
            # Runs loaded at start-up: one narrow lookup, not a whole run read under the lock.
            found = self._read_projection().read("SELECT user_id FROM runs WHERE run_id = ?", [run_id])
            run.user = (found[0][0] if found else None) or "unknown"
        return run.user

    def logged_model(self, model_id: str) -> LoggedModelEntry | None:
        entry = self.logged_models.get(model_id)
        if entry is None:
            projection = self._read_projection()
            projection.flush()
            model = projection.query(logged_model_reads.logged_model, model_id)
            if model is None:
                return None
            info = model["info"]
            entry = self.logged_models[model_id] = LoggedModelEntry(
                info["experiment_id"], info.get("source_run_id")
            )
        return entry

    def logged_model_tags(self, model_id: str) -> dict[str, str]:
        """A logged model's tags as the projection has them (a new model version extends one)."""
        projection = self._read_projection()
        projection.flush()
        model = projection.query(logged_model_reads.logged_model, model_id)
        return {t["key"]: t["value"] for t in model["info"].get("tags", [])} if model else {}

    def source_run(self, model_id: str | None) -> str | None:
        """The run that logged a model: a model's files are attributed to that run's user."""
        entry = self.logged_model(model_id) if model_id else None
        return entry.source_run_id if entry else None

    def has_row(self, table: str, **columns: str) -> bool:
        """Whether the projection's ``table`` has a row with these column values (tags, which
        the index does not keep)."""
        projection = self._read_projection()
        projection.flush()
        where = " AND ".join(f"{column} = ?" for column in columns)
        return bool(projection.read(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1", list(columns.values())))

    # Kept current by the write service ------------------------------------------------------

    def apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, BatchLogged):
                cached = self.params.get(event.run_id)
                if cached is not None:
                    for p in event.params:
                        cached[p.key] = p.value
            elif isinstance(event, RunCreated):
                user = next((t.value for t in event.tags if t.key == "mlflow.user"), event.user_id)
                self.runs[event.run_id] = RunEntry(event.experiment_id, "active", user)
                self._cache_params(event.run_id, {})  # a new run has none: no projection lookup later
            elif isinstance(event, RunDeleted):
                self.runs[event.run_id].lifecycle = "deleted"
            elif isinstance(event, RunRestored):
                self.runs[event.run_id].lifecycle = "active"
            elif isinstance(event, ExperimentCreated):
                self._add_experiment(event.experiment_id, event.name, "active", event.artifact_location)
                self._creator_grant(event, "experiment", event.experiment_id)
            elif isinstance(event, ExperimentRenamed):
                exp = self.experiments[event.experiment_id]
                self.experiment_by_name.pop(exp.name, None)
                exp.name = event.name
                self.experiment_by_name[event.name] = event.experiment_id
            elif isinstance(event, ExperimentDeleted):
                self._set_experiment_lifecycle(event.experiment_id, "deleted")
            elif isinstance(event, ExperimentRestored):
                self._set_experiment_lifecycle(event.experiment_id, "active")
            elif isinstance(event, LoggedModelCreated):
                entry = LoggedModelEntry(event.experiment_id, event.source_run_id)
                self.logged_models[event.model_id] = entry
            elif isinstance(event, RegisteredModelCreated):
                key = event.registered_model_id or event.name
                self.registered_models[event.name] = RegisteredModelEntry(key)
                self._creator_grant(event, "registered_model", key)
            elif isinstance(event, RegisteredModelRenamed):
                self.registered_models[event.new_name] = self.registered_models.pop(event.name)
            elif isinstance(event, RegisteredModelDeleted):
                del self.registered_models[event.name]
            elif isinstance(event, ModelVersionCreated):
                model = self.registered_models[event.name]
                model.latest_version = event.version
                model.stages[event.version] = "None"
            elif isinstance(event, ModelVersionStageChanged):
                self.registered_models[event.name].stages[event.version] = event.stage
            elif isinstance(event, ModelVersionDeleted):
                del self.registered_models[event.name].stages[event.version]
            elif isinstance(event, UserCreated):
                self.users.add(event.username)
            elif isinstance(event, UserDeleted):
                self.users.discard(event.username)
                self.grants = {g for g in self.grants if g[0] != event.username}
                self.tokens = {t: user for t, user in self.tokens.items() if user != event.username}
            elif isinstance(event, TokenCreated) and event.username in self.users:  # as the projection
                self.tokens[event.token_id] = event.username
            elif isinstance(event, TokenRevoked):
                self.tokens.pop(event.token_id, None)
            elif isinstance(event, PermissionGranted) and event.username in self.users:
                self.grants.add((event.username, event.resource_type, event.resource_id))
            elif isinstance(event, PermissionRevoked):
                self.grants.discard((event.username, event.resource_type, event.resource_id))

    def _creator_grant(self, event: Event, resource_type: str, resource_id: str) -> None:
        """The verified creator of an experiment or registered model holds MANAGE on it (as the
        projection's permissions derive it)."""
        if event.actor_verified and event.actor in self.users:
            self.grants.add((event.actor, resource_type, resource_id))
