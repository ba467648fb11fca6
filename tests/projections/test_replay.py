"""Invariant 5: tables maintained incrementally (in random batch splits) equal rebuilt ones."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackledger.ledger import Ledger
from trackledger.ledger import events as E
from trackledger.ledger.schema import events_to_table
from trackledger.projections import Projection
from trackledger.projections.projection import rebuild_file
from trackledger.projections.schema import TABLES, create_tables
from trackledger.projections.sources import apply_table

from tests.projections.conftest import make
from tests.projections.registry_requests import REGISTRY_KINDS, Registry, registry_in

RUNS = ["r1", "r2", "r3"]
EXPERIMENTS = ["1", "2"]
keys = st.sampled_from(["a", "b", "mlflow.runName"])
values = st.sampled_from(["x", "y", "z"])
metric_values = st.sampled_from([0.0, 1.0, -1.0, math.nan, math.inf])


def _metric(data):
    return E.Metric(
        data.draw(st.sampled_from(["m", "n"])),
        data.draw(metric_values),
        data.draw(st.integers(0, 3)),
        data.draw(st.integers(0, 3)),
        model_id=data.draw(st.sampled_from([None, "m-1"])),
    )


def _request(data, registry: Registry) -> list:
    """One request's events: a registry request is decided by the registry's state, as the write
    path decides it (so the sequence is one the server could have written)."""
    if data.draw(st.booleans()):
        return registry.request(data, data.draw(st.sampled_from(REGISTRY_KINDS)))
    run = data.draw(st.sampled_from(RUNS))
    exp = data.draw(st.sampled_from(EXPERIMENTS))
    kind = data.draw(
        st.sampled_from(
            [
                "rename_exp",
                "del_exp",
                "restore_exp",
                "exp_tag",
                "exp_tag_del",
                "update",
                "del",
                "restore",
                "batch",
                "batch",
                "batch",
                "tag_del",
                "inputs",
                "outputs",
                "artifact",
                "artifact_delete",
                "model_update",
                "model_tags",
                "model_params",
                "model_tag_del",
                "hook_update",
                "hook_delete",
            ]
        )
    )
    if kind == "rename_exp":
        return [make(E.ExperimentRenamed, experiment_id=exp, name=data.draw(values))]
    if kind == "del_exp":
        return [make(E.ExperimentDeleted, experiment_id=exp)]
    if kind == "restore_exp":
        return [make(E.ExperimentRestored, experiment_id=exp)]
    if kind == "exp_tag":
        return [make(E.ExperimentTagSet, experiment_id=exp, key=data.draw(keys), value=data.draw(values))]
    if kind == "exp_tag_del":
        return [make(E.ExperimentTagDeleted, experiment_id=exp, key=data.draw(keys))]
    if kind == "update":
        return [
            make(
                E.RunUpdated,
                run_id=run,
                status=data.draw(st.sampled_from([None, "FINISHED", "RUNNING"])),
                end_time=data.draw(st.sampled_from([None, 5, 9])),
                name=data.draw(st.sampled_from([None, "n1"])),
            )
        ]
    if kind == "del":
        return [make(E.RunDeleted, run_id=run)]
    if kind == "restore":
        return [make(E.RunRestored, run_id=run)]
    if kind == "batch":
        return [
            make(
                E.BatchLogged,
                run_id=run,
                params=[
                    E.Param(data.draw(keys), data.draw(values)) for _ in range(data.draw(st.integers(0, 2)))
                ],
                metrics=[_metric(data) for _ in range(data.draw(st.integers(0, 3)))],
                tags=[E.Tag(data.draw(keys), data.draw(values)) for _ in range(data.draw(st.integers(0, 2)))],
            )
        ]
    if kind == "tag_del":
        return [make(E.RunTagDeleted, run_id=run, key=data.draw(keys))]
    if kind == "inputs":
        context = [E.Tag("mlflow.data.context", data.draw(st.sampled_from(["train", "eval"])))]
        return [
            make(
                E.InputsLogged,
                run_id=run,
                datasets=[E.Dataset("ds", data.draw(values), tags=context)],
                models=[E.ModelOutput("m-1")],
            )
        ]
    if kind == "outputs":
        return [
            make(E.OutputsLogged, run_id=run, models=[E.ModelOutput("m-1", data.draw(st.integers(0, 1)))])
        ]
    if kind == "artifact":
        return [
            make(
                E.ArtifactWritten,
                run_id=run,
                path=f"{run}/{data.draw(values)}",
                size=1,
                sha256=data.draw(values),
            )
        ]
    if kind == "artifact_delete":
        path = f"{run}/{data.draw(values)}"
        return [
            make(
                E.ArtifactsDeleted,
                run_id=run,
                path=path,
                files=[E.ArtifactFile(path=path, size=1, sha256="h")],
            )
        ]
    if kind == "model_update":
        return [
            make(E.LoggedModelUpdated, model_id="m-1", status=data.draw(st.sampled_from(["READY", "FAILED"])))
        ]
    if kind == "model_tags":
        return [make(E.LoggedModelTagsSet, model_id="m-1", tags=[E.Tag(data.draw(keys), data.draw(values))])]
    if kind == "model_params":
        return [
            make(
                E.LoggedModelParamsLogged,
                model_id="m-1",
                params=[E.Param(data.draw(keys), data.draw(values))],
            )
        ]
    if kind == "model_tag_del":
        return [make(E.LoggedModelTagDeleted, model_id="m-1", key=data.draw(keys))]
    if kind == "hook_update":
        return [
            make(
                E.WebhookUpdated,
                webhook_id=data.draw(st.sampled_from(["h1", "h2"])),
                name=data.draw(st.sampled_from([None, "n1", "n2"])),
                url=data.draw(st.sampled_from([None, "http://a/", "http://b/"])),
                webhook_events=data.draw(
                    st.sampled_from([None, ["run.created"], ["run_tag.set", "run.failed"]])
                ),
                status=data.draw(st.sampled_from([None, "ACTIVE", "DISABLED"])),
                secret_sealed=data.draw(st.sampled_from([None, "", "sealed-1"])),
                filter_experiment_ids=data.draw(st.sampled_from([None, [], ["1"]])),
                filter_tag_key=data.draw(st.sampled_from([None, "", "stage"])),
            )
        ]
    if kind == "hook_delete":
        return [make(E.WebhookDeleted, webhook_id="h2")]


def _setup():
    events = [
        make(
            E.ExperimentCreated,
            experiment_id=e,
            name=f"exp{e}",
            artifact_location="loc",
            creation_time=1,
            tags=[E.Tag("a", "x")],
        )
        for e in EXPERIMENTS
    ]
    events += [
        make(
            E.RunCreated,
            experiment_id="1",
            run_id=r,
            name=r,
            user_id="u",
            start_time=1,
            artifact_uri="u",
            tags=[E.Tag("b", "y")],
        )
        for r in RUNS
    ]
    events.append(
        make(
            E.LoggedModelCreated,
            experiment_id="1",
            model_id="m-1",
            name="model",
            artifact_location="l",
            creation_time=1,
            source_run_id="r1",
            params=[E.Param("a", "x")],
            tags=[E.Tag("a", "x")],
        )
    )
    events.append(make(E.RegisteredModelCreated, name="rm", tags=[E.Tag("a", "x")]))
    events += [
        make(E.ModelVersionCreated, name="rm", version=v, source="s", tags=[E.Tag("a", "x")]) for v in (1, 2)
    ]
    events += [
        make(
            E.WebhookCreated,
            webhook_id=h,
            name=h,
            url="http://h/",
            webhook_events=["model_version.created"],
            status="ACTIVE",
            secret_sealed="sealed-0",
        )
        for h in ("h1", "h2")
    ]
    return events


def _stamp(events):
    return [
        E.TYPE_BY_TAG[e.__struct_config__.tag](
            **{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": i + 1, "ts": 1000 + i, "writer": "w"}
        )
        for i, e in enumerate(events)
    ]


def _appends(data, sizes: list[int]) -> tuple[list[list], Registry]:
    """The events of each append (``size`` requests' events, one after the other) and the registry
    they leave."""
    registry = Registry()
    appends = [[e for _ in range(size) for e in _request(data, registry)] for size in sizes]
    return [events for events in appends if events], registry


def _tables(con) -> dict[str, list]:
    return _tables_read(lambda sql: con.execute(sql).fetchall())


def _tables_read(read) -> dict[str, list]:
    """Every table's rows, sorted, read with ``read(sql) -> list[tuple]``."""
    out = {}
    for name in TABLES:
        rows = read(f"SELECT * FROM {name}")
        # NaN != NaN in Python: compare it as a marker instead
        rows = [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row) for row in rows]
        out[name] = sorted(rows, key=repr)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_incremental_equals_rebuild(data):
    appends, registry = _appends(data, [1] * data.draw(st.integers(1, 40)))
    events = _stamp(_setup() + [event for events in appends for event in events])
    cuts = sorted(data.draw(st.lists(st.integers(1, len(events) - 1), max_size=4, unique=True)))
    incremental, rebuilt = duckdb.connect(), duckdb.connect()
    create_tables(incremental)
    create_tables(rebuilt)
    for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
        apply_table(incremental, events_to_table(events[start:end]))
    apply_table(rebuilt, events_to_table(events))
    assert _tables(incremental) == _tables(rebuilt)
    # Equal tables could be equally wrong: the registry must also be what the requests made it.
    assert registry_in(lambda sql: incremental.execute(sql).fetchall()) == registry.models


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_live_projection_equals_rebuild_from_segments_and_wal(data):
    """The server's path end to end: requests appended to a real ledger (rolled into Parquet
    segments at random points) and applied by the projection writer, against ``rebuild_file``,
    which reads the segments with ``read_parquet`` and the WAL tail."""
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=25))
    appends, registry = _appends(data, sizes)
    requests = [[e] for e in _setup()] + appends
    rolls = set(data.draw(st.lists(st.integers(0, len(requests) - 1), max_size=4)))
    with tempfile.TemporaryDirectory() as root:
        with Ledger(Path(root, "store"), Path(root, "state"), durability="os") as ledger:
            live = Projection(ledger, Path(root, "live.duckdb"))
            try:
                for i, request in enumerate(requests):
                    live.submit(ledger.append(request))
                    if i in rolls:
                        ledger.roll()
                live.flush()
                live_tables = _tables_read(live.read)
                live_registry = registry_in(live.read)
            finally:
                live.close()
            rebuild_file(ledger, Path(root, "rebuilt.duckdb"))
        rebuilt = duckdb.connect(str(Path(root, "rebuilt.duckdb")), read_only=True)
        try:
            rebuilt_tables = _tables(rebuilt)
        finally:
            rebuilt.close()
    assert rebuilt_tables.keys() == live_tables.keys()
    for name in TABLES:
        assert rebuilt_tables[name] == live_tables[name], name
    assert live_registry == registry.models


def test_reapplying_a_batch_is_a_no_op():
    events = _stamp(_setup())
    con = duckdb.connect()
    create_tables(con)
    apply_table(con, events_to_table(events))
    before = _tables(con)
    assert apply_table(con, events_to_table(events)) == 0
    assert _tables(con) == before
