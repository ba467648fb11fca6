"""The import, phase by phase: experiments, logged models, runs (with their metric points and
artifacts), the model registry.

Each phase streams from the source and appends entity by entity, so memory holds two pages of runs
(the next one is read, and its points asked for, before this one is written) and PREFETCH_CHUNKS
chunks of points. Before a page is written, the target is asked which of its entities are
complete already (their marker events): those are skipped, and a partly written one is written
again, its events carrying the same ids, so the ledger keeps one copy of each. A run imported
before and changed in the source since gets what it lacks (``delta``; its points are read whole,
so memory holds that run's points).
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from trackledger.importer.artifacts import ArtifactFiles, CopiedFile
from trackledger.importer.delta import (
    RunDelta,
    new_points,
    points_table,
    state_event,
    state_marker,
    struct_points,
)
from trackledger.importer.events import (
    KEY_PREFIX,
    RunEvents,
    Unit,
    artifact_event,
    experiment_events,
    logged_model_events,
    registered_model_events,
    run_marker,
)
from trackledger.importer.prefetch import PointsPrefetch
from trackledger.importer.records import (
    Source,
    SourceError,
    SourceExperiment,
    SourceModelVersion,
    SourceRegisteredModel,
    SourceRun,
)
from trackledger.importer.target import Target
from trackledger.ledger.events import ExperimentDeleted, ExperimentTagSet, RunTagDeleted

METRIC_CHUNK = 5_000  # points per event
RUN_PAGE = 200  # runs whose completion is asked in one query
PREFETCH_CHUNKS = 32  # metric chunks read ahead of the appends, at most (~6 MB)
SWITCH_INTERVAL_S = 0.0002
DEFAULT_EXPERIMENT = ("0", "Default")
PHASES = ("experiments", "logged models", "runs", "metric points", "artifacts", "registered models")


@dataclass
class Options:
    experiments: list[str] = field(default_factory=list)  # names or ids; empty: all
    dry_run: bool = False
    remap_experiment_ids: bool = False


@dataclass
class Report:
    """What came over (``counts``), what was there already (``skipped``), and experiment ids given
    a new one (``remapped``: source id -> target id)."""

    counts: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    remapped: dict[str, str] = field(default_factory=dict)
    events: int = 0
    seconds: float = 0.0


class Progress:
    """Progress per phase; the CLI passes rich's, tests none."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, phase: str, amount: int = 1) -> None: ...


class Importer:
    def __init__(
        self,
        source: Source,
        files: ArtifactFiles,
        target: Target | None,
        options: Options,
        progress: Progress | None = None,
    ):
        self.source = source
        self.files = files
        self.target = target
        self.options = options
        self.progress = progress or Progress()
        self.origin = source.describe()
        self.report = Report()
        self.mapping: dict[str, str] = {}

    # The plan --------------------------------------------------------------------------

    def _selected(self) -> list[SourceExperiment]:
        experiments = self.source.experiments()
        if not self.options.experiments:
            return experiments
        by_id = {e.experiment_id: e for e in experiments}
        by_name = {e.name: e for e in experiments}
        chosen = {}
        for wanted in self.options.experiments:
            exp = by_name.get(wanted) or by_id.get(wanted)
            if exp is None:
                raise SourceError(f"the source has no experiment named or numbered {wanted!r}")
            chosen[exp.experiment_id] = exp
        return [e for e in experiments if e.experiment_id in chosen]

    def plan(self) -> list[tuple[SourceExperiment, Unit | None]]:
        """Each selected experiment with the events that import it (None: imported already),
        filling ``mapping``; refuses ids and names the target has unless they are the same
        experiment (imported before, or the Default experiment both sides start with)."""
        selected = self._selected()
        existing = self.target.experiments() if self.target else {}
        units = [(exp, _unit_key(exp)) for exp in selected]
        done = self.target.known([marker for _, marker in units]) if self.target else {}
        names = {name: exp_id for exp_id, name in existing.items()}
        next_id = (
            max(
                [int(i) for i in existing if i.isdigit()]
                + [int(e.experiment_id) for e in selected if e.experiment_id.isdigit()]
                + [0]
            )
            + 1
        )
        planned = []
        for exp, marker in units:
            if marker in done:
                self.mapping[exp.experiment_id] = done[marker]
                planned.append((exp, None))
                continue
            if (exp.experiment_id, exp.name) == DEFAULT_EXPERIMENT and existing.get("0") == "Default":
                self.mapping["0"] = "0"
                planned.append((exp, self._default_merge(exp)))
                continue
            target_id = exp.experiment_id
            if exp.name in names:
                raise SourceError(
                    f"experiment {exp.name!r} (id {exp.experiment_id}) exists in the target already "
                    f"(id {names[exp.name]}): rename one of them first"
                )
            if target_id in existing:
                if not self.options.remap_experiment_ids:
                    raise SourceError(
                        f"experiment id {target_id} ({exp.name!r}) is taken in the target by "
                        f"{existing[target_id]!r}: rerun with --remap-experiment-ids to give it a new id"
                    )
                target_id = str(next_id)
                next_id += 1
                self.report.remapped[exp.experiment_id] = target_id
            self.mapping[exp.experiment_id] = target_id
            origin = (
                self.origin
                if target_id == exp.experiment_id
                else (f"{self.origin} (experiment {exp.experiment_id})")
            )
            planned.append((exp, experiment_events(exp, target_id, f"mlflow-artifacts:/{target_id}", origin)))
        return planned

    def _default_merge(self, exp: SourceExperiment) -> Unit:
        """The source's Default experiment is the target's: its tags and lifecycle come over."""
        unit = Unit(f"{KEY_PREFIX}/default-experiment/{exp.creation_time}", imported_from=self.origin)
        for tag in exp.tags:
            unit.add(ExperimentTagSet, experiment_id="0", key=tag.key, value=tag.value)
        if exp.lifecycle_stage == "deleted":
            unit.add(ExperimentDeleted, experiment_id="0", source_time=exp.last_update_time)
        return unit

    # Running ---------------------------------------------------------------------------

    def run(self) -> Report:
        # The thread taking points ahead from the source needs the GIL briefly and often; behind
        # this thread's Python work it would wait the default 5 ms each time (measured: a source
        # read in a thread came at a third of its speed). Switching every 0.2 ms costs this
        # thread nothing measurable.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            return self._run()
        finally:
            sys.setswitchinterval(switch_interval)

    def _run(self) -> Report:
        started = time.monotonic()
        planned = self.plan()
        exp_ids = [exp.experiment_id for exp, _ in planned]
        runs = self.source.count_runs(exp_ids) if exp_ids else 0
        self.progress.start("experiments", len(planned))
        for _exp, unit in planned:
            if unit is None:
                self.report.skipped["experiments"] += 1
            else:
                self.report.counts["experiments"] += 1
                self._append(unit.events)
            self.progress.advance("experiments")
        self._logged_models(exp_ids)
        self.progress.start("runs", runs)
        self.progress.start("metric points", None)
        self._runs(exp_ids)
        self._registry()
        if self.target:
            self.target.sync()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _append(self, events, points=None) -> None:
        if self.target is not None and not self.options.dry_run and events:
            self.report.events += self.target.append(events, points)

    def _copy(self, uri: str, into: str, key: str, skip: set[str] = frozenset()) -> list[CopiedFile]:
        """Copy the files under ``uri`` (but those in ``skip``) to ``into``."""
        copied = []
        for relpath in self.files.files(uri):
            if relpath in skip:
                continue
            path = f"{into}/{relpath}"
            file_key = f"{key}/artifact/{relpath}"
            if self.options.dry_run:
                size, digest = 0, ""
            else:
                with self.files.open(uri, relpath) as stream:
                    size, digest = self.target.write_artifact(path, stream, file_key)
            copied.append(CopiedFile(path, size, digest, file_key))
            self.report.counts["artifact files"] += 1
            self.report.counts["artifact bytes"] += size
            self.progress.advance("artifacts")
        return copied

    def _done(self, markers: list[str]) -> set[str]:
        if self.target is None:
            return set()
        return set(self.target.known(markers))

    def _logged_models(self, exp_ids: list[str]) -> None:
        self.progress.start("logged models", None)
        for page in _pages(self.source.logged_models(exp_ids), RUN_PAGE):
            keys = {m.model_id: Unit(f"{KEY_PREFIX}/logged-model/{m.model_id}").marker for m in page}
            done = self._done(list(keys.values()))
            for model in page:
                self.progress.advance("logged models")
                if keys[model.model_id] in done:
                    self.report.skipped["logged models"] += 1
                    continue
                target_exp = self.mapping[model.experiment_id]
                location = f"{target_exp}/models/{model.model_id}/artifacts"
                copied = self._copy(model.artifact_location, location, keys[model.model_id])
                actor = next((t.value for t in model.tags if t.key == "mlflow.user"), "")
                unit = logged_model_events(
                    model, target_exp, f"mlflow-artifacts:/{location}", actor, self.origin, copied
                )
                self._append(unit.events)
                self.report.counts["logged models"] += 1

    def _runs(self, exp_ids: list[str]) -> None:
        plans = map(self._plan_page, _pages(self.source.runs(exp_ids), RUN_PAGE))
        with PointsPrefetch(self.source, METRIC_CHUNK, PREFETCH_CHUNKS) as prefetch:
            for plan in _one_ahead(plans, lambda plan: plan.want(prefetch)):
                self._import_page(plan, prefetch)

    def _plan_page(self, page: list[SourceRun]) -> _PagePlan:
        """Which of a page's runs to import, which to bring up to date, and how many are current."""
        states = {r.run_id: state_marker(r) for r in page}
        done = self._done([run_marker(r.run_id) for r in page] + list(states.values()))
        # In run id order: a source reads a page's points in one pass of its index.
        todo = sorted((r for r in page if run_marker(r.run_id) not in done), key=lambda r: r.run_id)
        changed = sorted(
            (r for r in page if states[r.run_id] not in done and run_marker(r.run_id) in done),
            key=lambda r: r.run_id,
        )
        return _PagePlan(todo, changed, sum(states[r.run_id] in done for r in page))

    def _import_page(self, plan: _PagePlan, prefetch: PointsPrefetch) -> None:
        counts = self.report.counts
        self.report.skipped["runs"] += plan.current
        self.progress.advance("runs", plan.current)
        for run in plan.todo:
            target_exp = self.mapping[run.experiment_id]
            location = f"{target_exp}/{run.run_id}/artifacts"
            events = RunEvents(run, target_exp, f"mlflow-artifacts:/{location}", self.origin)
            self._append(events.head())
            for chunk in prefetch.of(run):
                self._append([events.metrics()], {0: chunk})
                counts["metric points"] += len(chunk)
                self.progress.advance("metric points", len(chunk))
            copied = self._copy(run.artifact_uri, location, events.key)
            self._append([*events.tail(copied), state_event(run, events.common, self.origin)])
            counts["runs"] += 1
            counts["params"] += len(run.params)
            counts["tags"] += len(run.tags)
            counts["dataset inputs"] += len(run.datasets)
            self.progress.advance("runs")
        for run in plan.changed:
            self._catch_up(run, points_table(list(prefetch.of(run))))
            self.progress.advance("runs")

    def _catch_up(self, run: SourceRun, source_points: pa.Table) -> None:
        """A run imported before and changed since: what the target lacks, then its state marker
        (see ``delta``)."""
        counts = self.report.counts
        target_exp = self.mapping[run.experiment_id]
        location = f"{target_exp}/{run.run_id}/artifacts"
        held = self.target.held(run.run_id, location)
        if held is None:
            raise SourceError(f"run {run.run_id} was imported but the target has no such run")
        common = {"experiment_id": target_exp, "run_id": run.run_id, "actor": run.user_id}
        delta = RunDelta(run, held, common, self.origin)
        head = delta.head()
        self._append(head)
        for event in head:
            counts["params"] += len(getattr(event, "params", ()))
            counts["tags"] += len(getattr(event, "tags", ())) + isinstance(event, RunTagDeleted)
            counts["dataset inputs"] += len(getattr(event, "datasets", ()))
        fresh = new_points(source_points, held.points)
        for start in range(0, len(fresh), METRIC_CHUNK):
            chunk = struct_points(fresh.slice(start, METRIC_CHUNK))
            self._append([delta.points(chunk)], {0: chunk})
            counts["metric points"] += len(chunk)
            self.progress.advance("metric points", len(chunk))
        copied = self._copy(run.artifact_uri, location, delta.key, skip=held.artifacts)
        tail = [artifact_event(a, common, self.origin) for a in copied]
        self._append([*tail, *delta.lifecycle(), state_event(run, common, self.origin)])
        counts["runs updated"] += 1

    def _registry(self) -> None:
        self.progress.start("registered models", None)
        for page in _pages(self.source.registered_models(), RUN_PAGE):
            units = [registered_model_events(self._relocated(m), self.origin) for m in page]
            done = self._done([u.marker for u in units])
            for unit, model in zip(units, page, strict=True):
                self.progress.advance("registered models")
                if unit.marker in done:
                    self.report.skipped["registered models"] += 1
                    continue
                self._append(unit.events)
                self.report.counts["registered models"] += 1
                self.report.counts["model versions"] += len(model.versions)

    def _relocated(self, model: SourceRegisteredModel) -> SourceRegisteredModel:
        """Version sources that point into a run's or a logged model's artifacts point to the copy
        (an experiment may have a new id); ``models:/`` and ``runs:/`` sources stay as they are."""
        versions = [_relocate(v, self.mapping) for v in model.versions]
        return SourceRegisteredModel(**{**_fields(model), "versions": versions})


_ARTIFACT_PATH = re.compile(
    r"/(?P<exp>\d+)/(?P<entity>[0-9a-f]{32}|models/m-[0-9a-f]+)/artifacts(?P<rest>/.*)?$"
)


def _relocate(version: SourceModelVersion, mapping: dict[str, str]) -> SourceModelVersion:
    source = version.source
    if source.startswith(("models:/", "runs:/")):
        return version
    found = _ARTIFACT_PATH.search(
        source.replace("mlflow-artifacts:", "mlflow-artifacts:/", 1)
        if source.startswith("mlflow-artifacts:")
        else source
    )
    if not found or found["exp"] not in mapping:
        return version
    new = f"mlflow-artifacts:/{mapping[found['exp']]}/{found['entity']}/artifacts{found['rest'] or ''}"
    return SourceModelVersion(**{**_fields(version), "source": new})


def _fields(struct) -> dict:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


def _unit_key(exp: SourceExperiment) -> str:
    return experiment_events(exp, exp.experiment_id, "", "").marker


@dataclass
class _PagePlan:
    todo: list[SourceRun]  # runs to import, in run id order
    changed: list[SourceRun]  # runs imported before and changed in the source since, likewise
    current: int  # runs imported before and unchanged

    def want(self, prefetch: PointsPrefetch) -> None:
        prefetch.want(self.todo)
        prefetch.want(self.changed)


def _one_ahead(items: Iterator, start: Callable) -> Iterator:
    """The items, each ``start``-ed as soon as it is read: a step before it is yielded."""
    previous = none = object()
    for item in items:
        start(item)
        if previous is not none:
            yield previous
        previous = item
    if previous is not none:
        yield previous


def _pages(items: Iterator, size: int) -> Iterator[list]:
    page = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page
