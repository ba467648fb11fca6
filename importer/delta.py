"""Reruns: a run imported before and changed in the source since is brought up to date.

A team that keeps MLflow running while it moves over imports again to catch up. Each run's state
in the source is summed up by a fingerprint of what the source gives per run anyway (its record:
status, end time, lifecycle, name, params, tags, dataset and model inputs, model outputs; and its
latest metrics, from MLflow's ``latest_metrics`` or REST's ``run.data.metrics``), so an unchanged
run costs no read of its points. Every import of a run ends with a *state marker*, an event whose
id is keyed by the run and that fingerprint (``state_marker``). On a rerun:

- state marker in the target: the run is current, skipped;
- the run's final event (``events.run_marker``) in the target but not this state marker: the run
  changed (or was imported by a version without state markers). The target is asked what it holds
  for the run (``TargetRun``), the source's points and artifact files are read, and only the
  differences are appended (``RunDelta``), then the state marker;
- neither: the run is imported whole (``events.RunEvents``).

Delta events are keyed by their content and by a digest of what the target held when the delta
was computed (``TargetRun.digest``), never by position: a rerun after a partly appended delta sees
a different target, so it can never give an id already used to different content (the ledger drops
a known id silently), and a retry of the same delta on the same target gives the same ids.

What the fingerprint cannot see is caught only with another change of the run: a metric point
logged at an earlier step than its key's latest one, an artifact file added or rewritten. Points
are compared as multisets of (key, value, timestamp, step): a point the target lacks comes over;
artifact files come over when their path is new to the target.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import duckdb
import msgspec
import pyarrow as pa
from trackledger.importer.events import run_key
from trackledger.importer.records import SourceRun
from trackledger.ledger.events import (
    BatchLogged,
    Event,
    InputsLogged,
    OutputsLogged,
    RunDeleted,
    RunRestored,
    RunTagDeleted,
    RunUpdated,
    keyed_event_id,
)
from trackledger.ledger.schema import METRIC_TYPE

POINT_COLUMNS = ("key", "value", "timestamp", "step")
POINTS_SCHEMA = pa.schema([METRIC_TYPE.field(name) for name in POINT_COLUMNS])

_encoder = msgspec.msgpack.Encoder(order="deterministic")


def fingerprint(run: SourceRun) -> str:
    """A digest of the run's state in the source (its record, latest metrics included)."""
    return hashlib.sha256(_encoder.encode(run)).hexdigest()[:32]


def state_marker(run: SourceRun) -> str:
    """The id of the event that says the target holds the run as the source had it at ``fingerprint``."""
    return keyed_event_id(f"{run_key(run.run_id)}/state/{fingerprint(run)}", 0)


def state_event(run: SourceRun, common: dict, origin: str) -> RunUpdated:
    """The state marker: the run's status and end time (setting them again changes nothing)."""
    return RunUpdated(
        id=state_marker(run),
        **common,
        imported_from=origin,
        status=run.status,
        end_time=run.end_time,
        source_time=run.end_time or run.start_time,
    )


@dataclass
class TargetRun:
    """What the target holds for an imported run. ``artifacts``: file paths relative to the run's
    artifact folder; ``points``: its metric points, columns of POINTS_SCHEMA."""

    status: str
    end_time: int | None
    lifecycle_stage: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: set[tuple[str, str]] = field(default_factory=set)
    model_inputs: set[tuple[str, int]] = field(default_factory=set)
    model_outputs: set[tuple[str, int]] = field(default_factory=set)
    artifacts: set[str] = field(default_factory=set)
    points: pa.Table = field(default_factory=POINTS_SCHEMA.empty_table)

    def digest(self) -> str:
        summary = [
            self.status,
            self.end_time,
            self.lifecycle_stage,
            sorted(self.params.items()),
            sorted(self.tags.items()),
            sorted(self.datasets),
            sorted(self.model_inputs),
            sorted(self.model_outputs),
            sorted(self.artifacts),
            _points_digest(self.points),
        ]
        return hashlib.sha256(_encoder.encode(summary)).hexdigest()[:32]


def _points_digest(points: pa.Table) -> list:
    """Count and an order-free sum of row hashes: the same multiset of points, the same digest."""
    con = duckdb.connect()
    con.register("points", points)
    count, total = con.execute(
        "SELECT count(*), coalesce(sum(hash(key, value, timestamp, step)::HUGEINT), 0)::VARCHAR FROM points"
    ).fetchone()
    return [count, total]


def new_points(source: pa.Table, target: pa.Table) -> pa.Table:
    """The source's points the target lacks (a multiset difference on key, value, timestamp and
    step; NaN equals NaN), every column of the source's kept, in the source's order."""
    con = duckdb.connect()
    con.register("s", source.append_column("pos", pa.array(range(len(source)), pa.int64())))
    con.register("t", target.select(list(POINT_COLUMNS)))
    numbered = "row_number() OVER (PARTITION BY key, value, timestamp, step)"
    found = con.sql(
        f"""WITH sn AS (SELECT *, {numbered} AS n FROM s),
                 tn AS (SELECT *, {numbered} AS n FROM t)
            SELECT sn.* EXCLUDE (n, pos) FROM sn ANTI JOIN tn USING (key, value, timestamp, step, n)
            ORDER BY pos"""
    ).to_arrow_table()
    return found.cast(pa.schema(list(METRIC_TYPE)))


def points_table(chunks: list[pa.StructArray]) -> pa.Table:
    """Chunks of METRIC_TYPE points as one table (no chunk: an empty one)."""
    if not chunks:
        return pa.schema(list(METRIC_TYPE)).empty_table()
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(c) for c in chunks])


def struct_points(table: pa.Table) -> pa.StructArray:
    columns = [column.combine_chunks() for column in table.columns]
    return pa.StructArray.from_arrays(columns, fields=list(METRIC_TYPE))


class RunDelta:
    """The events that bring the target's copy of ``run`` to the source's state."""

    def __init__(self, run: SourceRun, held: TargetRun, common: dict, origin: str):
        self.run = run
        self.held = held
        self.common = common
        self.origin = origin
        self.key = f"{run_key(run.run_id)}/delta/{held.digest()}"

    def _event(self, cls: type[Event], **fields) -> Event:
        content = hashlib.sha256(_encoder.encode([cls.__struct_config__.tag, fields])).hexdigest()[:32]
        return cls(
            id=keyed_event_id(f"{self.key}/{content}", 0), **self.common, imported_from=self.origin, **fields
        )

    def head(self) -> list[Event]:
        """Params and tags set or removed, inputs and outputs logged."""
        run, held = self.run, self.held
        events: list[Event] = []
        params = [p for p in run.params if held.params.get(p.key) != p.value]
        tags = [t for t in run.tags if held.tags.get(t.key) != t.value]
        if params or tags:
            events.append(self._event(BatchLogged, params=params, tags=tags))
        source_tags = {t.key for t in run.tags}
        events.extend(self._event(RunTagDeleted, key=k) for k in sorted(held.tags) if k not in source_tags)
        datasets = [d for d in run.datasets if (d.name, d.digest) not in held.datasets]
        inputs = [m for m in run.model_inputs if (m.model_id, m.step) not in held.model_inputs]
        if datasets or inputs:
            events.append(self._event(InputsLogged, datasets=datasets, models=inputs))
        outputs = [m for m in run.model_outputs if (m.model_id, m.step) not in held.model_outputs]
        if outputs:
            events.append(self._event(OutputsLogged, models=outputs))
        return events

    def points(self, chunk: pa.StructArray) -> Event:
        """The event of a chunk of new points (they go beside it, as Arrow), keyed by their bytes."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, pa.schema(list(METRIC_TYPE))) as writer:
            writer.write_batch(pa.RecordBatch.from_struct_array(chunk))
        content = hashlib.sha256(sink.getvalue()).hexdigest()[:32]
        return BatchLogged(
            id=keyed_event_id(f"{self.key}/points/{content}", 0), **self.common, imported_from=self.origin
        )

    def lifecycle(self) -> list[Event]:
        run, held = self.run, self.held
        if run.lifecycle_stage == held.lifecycle_stage:
            return []
        if run.lifecycle_stage == "deleted":
            return [self._event(RunDeleted, source_time=run.deleted_time or run.end_time)]
        return [self._event(RunRestored)]
