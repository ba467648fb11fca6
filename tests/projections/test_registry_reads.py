"""Registry reads: by name through renames, deletions and re-creations; MLflow's latest versions,
timestamps, searches and their errors."""

from __future__ import annotations

import functools

import duckdb
import pytest
from trackledger.ledger import events as E
from trackledger.ledger.schema import events_to_table
from trackledger.projections import InvalidQuery
from trackledger.projections import registry as registry_reads
from trackledger.projections.schema import create_tables
from trackledger.projections.scope import IdSet, Scope
from trackledger.projections.sources import apply_table

from tests.projections.conftest import make


def created(name: str, **fields):
    event = make(E.RegisteredModelCreated, name=name, **fields)
    return E.RegisteredModelCreated(**{**_fields(event), "registered_model_id": event.id})


def _fields(event) -> dict:
    return {f: getattr(event, f) for f in event.__struct_fields__}


def version(model, number: int, **fields):
    return make(
        E.ModelVersionCreated,
        name=model.name,
        version=number,
        source=f"s3://b/{number}",
        registered_model_id=model.registered_model_id,
        **fields,
    )


def on(model, cls, **fields):
    """An event about ``model`` (as the write path resolves it: its key, the current name)."""
    return make(
        cls, name=fields.pop("name", model.name), registered_model_id=model.registered_model_id, **fields
    )


def versions(mv_list) -> list[tuple[str, str]]:
    return [(mv["version"], mv["current_stage"]) for mv in mv_list]


def test_a_renamed_model_keeps_its_versions_tags_and_aliases(projection, log):
    model = created("churn", tags=[E.Tag("team", "a")])
    log(model, version(model, 1, tags=[E.Tag("k", "v")]))
    log(on(model, E.RegisteredModelAliasSet, key="champion", version=1))
    renamed = log(on(model, E.RegisteredModelRenamed, new_name="churn-v2", versions=[1]))[0]
    assert projection.query(registry_reads.registered_model, "churn") is None
    got = projection.query(registry_reads.registered_model, "churn-v2")
    assert got["tags"] == [{"key": "team", "value": "a"}]
    assert got["aliases"] == [{"alias": "champion", "version": "1"}]
    assert got["last_updated_timestamp"] == renamed.ts
    mv = projection.query(registry_reads.model_version, "churn-v2", 1)
    assert mv["name"] == "churn-v2" and mv["tags"] == [{"key": "k", "value": "v"}]
    assert mv["aliases"] == ["champion"] and mv["last_updated_timestamp"] == renamed.ts
    assert projection.query(registry_reads.model_version_by_alias, "churn-v2", "champion")["version"] == "1"


def test_a_deleted_version_is_gone_with_its_aliases_and_its_number_stays_used(projection, log):
    model = created("m")
    log(model, version(model, 1), version(model, 2))
    log(on(model, E.RegisteredModelAliasSet, key="a", version=2))
    log(on(model, E.RegisteredModelAliasSet, key="b", version=1))
    deleted = log(on(model, E.ModelVersionDeleted, version=2))[0]
    assert projection.query(registry_reads.model_version, "m", 2) is None
    assert projection.query(registry_reads.model_version_by_alias, "m", "a") is None
    got = projection.query(registry_reads.registered_model, "m")
    assert got["aliases"] == [{"alias": "b", "version": "1"}]
    assert versions(got["latest_versions"]) == [("1", "None")]
    assert got["last_updated_timestamp"] == deleted.ts
    key = model.registered_model_id
    assert sorted(projection.query(registry_reads.registry_index)) == [
        ("m", key, 1, "None", False),
        ("m", key, 2, "None", True),
    ]
    assert projection.query(registry_reads.model_version_by_alias, "m", "latest")["version"] == "1"


def test_an_alias_set_and_its_version_deleted_in_one_batch_is_gone(projection, log):
    model = created("m")
    log(model, version(model, 1))
    log(on(model, E.RegisteredModelAliasSet, key="a", version=1), on(model, E.ModelVersionDeleted, version=1))
    assert projection.query(registry_reads.registered_model, "m").get("aliases") is None
    assert projection.query(registry_reads.model_version_by_alias, "m", "latest") is None


def test_a_deleted_model_frees_its_name_for_a_new_one(projection, log):
    old = created("m", tags=[E.Tag("t", "1")])
    log(old, version(old, 1), version(old, 2))
    log(on(old, E.RegisteredModelAliasSet, key="a", version=1), on(old, E.RegisteredModelDeleted))
    assert projection.query(registry_reads.registered_model, "m") is None
    new = created("m")
    log(new, version(new, 1))
    got = projection.query(registry_reads.registered_model, "m")
    assert "tags" not in got and "aliases" not in got and versions(got["latest_versions"]) == [("1", "None")]
    assert projection.query(registry_reads.registry_index) == [
        ("m", new.registered_model_id, 1, "None", False)
    ]
    for table in ("registered_models", "model_versions", "registered_model_tags", "registered_model_aliases"):
        assert projection.read(f"SELECT count(*) FROM {table} WHERE registered_model_id = ?", [old.id]) == [
            (0,)
        ]


def test_events_from_before_renames_key_their_model_by_name(projection, log):
    """Events written before registered_model_id existed carry none: their model's key is its name,
    and the write path writes that key into the model's later events."""
    legacy = make(E.RegisteredModelCreated, name="old")
    log(legacy, make(E.ModelVersionCreated, name="old", version=1, source="s"))
    log(make(E.RegisteredModelAliasSet, name="old", key="a", version=1))
    log(make(E.RegisteredModelRenamed, name="old", new_name="new", registered_model_id="old", versions=[1]))
    log(make(E.ModelVersionTagSet, name="new", version=1, key="k", value="v", registered_model_id="old"))
    got = projection.query(registry_reads.registered_model, "new")
    assert got["aliases"] == [{"alias": "a", "version": "1"}]
    assert projection.query(registry_reads.model_version, "new", 1)["tags"] == [{"key": "k", "value": "v"}]
    assert projection.query(registry_reads.registry_index) == [("new", "old", 1, "None", False)]


def test_latest_versions_are_the_newest_of_each_stage(projection, log):
    model = created("m")
    log(model, *(version(model, n) for n in (1, 2, 3, 4)))
    log(
        on(model, E.ModelVersionStageChanged, version=2, stage="Staging"),
        on(model, E.ModelVersionStageChanged, version=3, stage="Production"),
        on(model, E.ModelVersionStageChanged, version=1, stage="Staging"),
    )
    # A model read alone lists the stages in the order of their oldest version, as MLflow does.
    assert versions(projection.query(registry_reads.registered_model, "m")["latest_versions"]) == [
        ("2", "Staging"),
        ("3", "Production"),
        ("4", "None"),
    ]
    assert versions(projection.query(registry_reads.latest_versions, "m", ["production", "STAGING"])) == [
        ("2", "Staging"),
        ("3", "Production"),
    ]
    assert projection.query(registry_reads.latest_versions, "nope") is None
    with pytest.raises(InvalidQuery, match="Invalid Model Version stage: Live"):
        projection.query(registry_reads.latest_versions, "m", ["Live"])
    # A search lists them in the order of the stages' names.
    (found,), _ = projection.query(registry_reads.search_registered_models, "name = 'm'")
    assert versions(found["latest_versions"]) == [("4", "None"), ("3", "Production"), ("2", "Staging")]


def test_timestamps_change_as_in_mlflow(projection, log):
    model = created("m")
    first = log(model, version(model, 1))[-1]
    log(on(model, E.RegisteredModelTagSet, key="k", value="v"))
    log(on(model, E.ModelVersionTagSet, version=1, key="k", value="v"))
    log(on(model, E.RegisteredModelAliasSet, key="a", version=1))
    assert projection.query(registry_reads.registered_model, "m")["last_updated_timestamp"] == first.ts
    assert projection.query(registry_reads.model_version, "m", 1)["last_updated_timestamp"] == first.ts
    updated = log(on(model, E.ModelVersionUpdated, version=1, description="d"))[0]
    assert projection.query(registry_reads.registered_model, "m")["last_updated_timestamp"] == first.ts
    assert projection.query(registry_reads.model_version, "m", 1)["last_updated_timestamp"] == updated.ts
    described = log(on(model, E.RegisteredModelUpdated, description="about m"))[0]
    got = projection.query(registry_reads.registered_model, "m")
    assert got["last_updated_timestamp"] == described.ts and got["description"] == "about m"
    # An update without a description clears it.
    log(on(model, E.ModelVersionUpdated, version=1), on(model, E.RegisteredModelUpdated))
    assert "description" not in projection.query(registry_reads.model_version, "m", 1)
    assert "description" not in projection.query(registry_reads.registered_model, "m")


@pytest.fixture
def registry(log):
    a = created("alpha", tags=[E.Tag("team", "churn")])
    b = created("beta", tags=[E.Tag("team", "fraud")])
    prompt = created("prompt", tags=[E.Tag("mlflow.prompt.is_prompt", "true")])
    log(a, b, prompt)
    log(version(a, 1, run_id="r1"), version(a, 2, run_id="r2", tags=[E.Tag("k", "x")]))
    # As MLflow has it, a prompt's versions are tagged too, and version searches read those tags.
    log(version(b, 1, run_id="r1"), version(prompt, 1, tags=[E.Tag("mlflow.prompt.is_prompt", "true")]))
    log(on(b, E.ModelVersionUpdated, version=1, description="touched"))
    return a, b


def names(page) -> list[str]:
    return [m["name"] for m in page[0]]


def test_registered_model_search(projection, registry):
    search = functools.partial(projection.query, registry_reads.search_registered_models)
    assert names(search()) == ["alpha", "beta"]  # prompts are left out
    assert names(search("name = 'beta'")) == ["beta"]
    assert names(search("name LIKE 'a%'")) == ["alpha"]
    assert names(search("name LIKE 'A%'")) == []
    assert names(search("name ILIKE 'A%'")) == ["alpha"]
    assert names(search("name IN ('beta', 'prompt')")) == ["beta"]
    assert names(search("tags.team = 'fraud'")) == ["beta"]
    assert names(search("tag.team LIKE '%r%' AND name != 'alpha'")) == ["beta"]
    # The filter the mlflow client adds, and the one asking for prompts.
    assert names(search("tag.`mlflow.prompt.is_prompt` != 'true'")) == ["alpha", "beta"]
    assert names(search("tags.`mlflow.prompt.is_prompt` = 'true'")) == ["prompt"]
    # alpha's last update is its second version, beta's its first: the description changed no model.
    assert names(search(order_by=["timestamp DESC"])) == ["beta", "alpha"]
    assert names(search(order_by=["name DESC"])) == ["beta", "alpha"]
    page, token = search(max_results=1)
    assert names((page, token)) == ["alpha"] and token
    assert names(search(max_results=1, page_token=token)) == ["beta"]
    assert search(max_results=1, page_token=token)[1] is None


def test_model_version_search(projection, registry):
    search = functools.partial(projection.query, registry_reads.search_model_versions)

    def found(*args, **kwargs):
        return [(mv["name"], mv["version"]) for mv in search(*args, **kwargs)[0]]

    # MLflow's default order: last updated first, then name, then the newest version.
    assert found() == [("beta", "1"), ("alpha", "2"), ("alpha", "1")]
    assert found("name = 'alpha'", order_by=["version_number ASC"]) == [("alpha", "1"), ("alpha", "2")]
    assert found("run_id = 'r1'", order_by=["name"]) == [("alpha", "1"), ("beta", "1")]
    assert found("run_id IN ('r2', 'r9')") == [("alpha", "2")]
    assert found("version_number >= 2") == [("alpha", "2")]
    assert found("version_number = '1'", order_by=["name DESC"]) == [("beta", "1"), ("alpha", "1")]
    assert found("tags.k = 'x'") == [("alpha", "2")]
    assert found("source_path = 's3://b/2'") == [("alpha", "2")]
    assert found(max_results=2) == [("beta", "1"), ("alpha", "2")]
    assert found(max_results=2, page_token=search(max_results=2)[1]) == [("alpha", "1")]
    assert "aliases" not in search()[0][0]  # as in MLflow, found versions come without aliases


@pytest.mark.parametrize(
    ("find", "filter", "order_by", "message"),
    [
        ("models", "creation_timestamp > 1", (), "Invalid attribute key 'creation_timestamp'"),
        ("models", "metrics.x > 1", (), "Invalid entity type 'metrics'"),
        ("models", "name > 'a'", (), "Invalid comparator for attribute: >"),
        ("models", "tags.t IS NULL", (), "Invalid comparator for tag: IS NULL"),
        ("models", "tags.t = 1", (), "Expected a quoted string value for tag"),
        ("models", None, ("creation_timestamp",), "Invalid order by key 'creation_timestamp'"),
        ("models", None, ("timestamp", "last_updated_timestamp DESC"), "duplicate fields"),
        ("versions", "version_number = 1.5", (), "Invalid value for numeric attribute 'version_number'"),
        ("versions", "version_number LIKE '1'", (), "Invalid comparator for attribute version_number"),
        ("versions", "source_path IN ('a')", (), "Only ['name', 'run_id'] attributes support"),
        ("versions", "name = 1", (), "support comparison with numeric values"),
        ("versions", None, ("stage",), "Invalid attribute key 'stage'"),
    ],
)
def test_bad_registry_searches_raise(projection, find, filter, order_by, message):
    found = (
        registry_reads.search_registered_models if find == "models" else registry_reads.search_model_versions
    )
    search = functools.partial(projection.query, found)
    with pytest.raises(InvalidQuery) as err:
        search(filter, order_by)
    assert message in str(err.value)


def test_audit_summaries_of_registry_events(projection, log):
    model = created("m")
    log(model, version(model, 1))
    log(
        on(model, E.RegisteredModelRenamed, new_name="n"),
        on(model, E.RegisteredModelUpdated, name="n", description="d"),
        on(model, E.RegisteredModelTagSet, name="n", key="k", value="v"),
        on(model, E.RegisteredModelTagDeleted, name="n", key="k"),
        on(model, E.ModelVersionUpdated, name="n", version=1),
        on(model, E.ModelVersionStageChanged, name="n", version=1, stage="Staging"),
        on(model, E.ModelVersionTagSet, name="n", version=1, key="k", value="v"),
        on(model, E.ModelVersionTagDeleted, name="n", version=1, key="k"),
        on(model, E.ModelVersionDeleted, name="n", version=1),
        on(model, E.RegisteredModelDeleted, name="n"),
    )
    summaries = [s for (s,) in projection.read("SELECT summary FROM events ORDER BY seq")][2:]
    assert summaries == [
        "m renamed to n",
        "n: description set",
        "n: tag k=v",
        "n: tag k deleted",
        "n v1: description cleared",
        "n v1 -> Staging",
        "n v1: tag k=v",
        "n v1: tag k deleted",
        "n v1",
        "n",
    ]


def test_registry_events_name_their_model_by_key_and_version_through_renames(projection, log):
    """A model's history is read by its key: the events before and after a rename, and not those
    of a later model of the same name, nor other events with a name."""
    model = created("churn")
    log(model, version(model, 1), on(model, E.RegisteredModelAliasSet, key="champion", version=1))
    log(
        on(model, E.RegisteredModelRenamed, new_name="churn-v2"),
        on(model, E.RegisteredModelDeleted, name="churn-v2"),
    )
    again = created("churn")
    experiment = make(
        E.ExperimentCreated, experiment_id="7", name="churn", artifact_location="a", creation_time=1
    )
    first_later_seq = log(again, experiment)[0].seq
    rows = projection.read(
        "SELECT type, version FROM events WHERE registered_model_id = ? ORDER BY seq",
        [model.registered_model_id],
    )
    assert rows == [
        ("registered_model_created", None),
        ("model_version_created", 1),
        ("registered_model_alias_set", 1),
        ("registered_model_renamed", None),
        ("registered_model_deleted", None),
    ]
    later = projection.read(
        "SELECT type, registered_model_id FROM events WHERE seq >= ? ORDER BY seq", [first_later_seq]
    )
    assert later == [("registered_model_created", again.registered_model_id), ("experiment_created", None)]


def test_a_rename_moves_the_last_update_of_the_versions_it_names_only():
    """The versions a rename touches are in its event: a version created after it, in the same
    batch of a rebuild, is not touched, even when its time is earlier (another writer's clock)."""
    events = [
        make(E.RegisteredModelCreated, name="m", registered_model_id="k"),
        make(E.RegisteredModelRenamed, name="m", new_name="m2", registered_model_id="k", versions=[]),
        make(E.ModelVersionCreated, name="m2", version=1, source="s", registered_model_id="k"),
    ]
    stamped = [
        type(e)(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": seq, "ts": ts, "writer": "w"})
        for e, seq, ts in zip(events, (1, 2, 3), (100, 1000, 900), strict=True)
    ]

    def last_updated(batches) -> list[tuple]:
        con = duckdb.connect()
        create_tables(con)
        for batch in batches:
            apply_table(con, events_to_table(batch))
        return con.execute("SELECT version, last_updated_timestamp FROM model_versions").fetchall()

    assert last_updated([stamped[:2], stamped[2:]]) == last_updated([stamped]) == [(1, 900)]


def test_a_page_of_versions_is_newest_first_live_only_and_counts_what_the_scope_may_read(projection, log):
    model = created("big")
    hidden = created("hidden")
    log(model, *[version(model, n) for n in range(1, 61)], hidden, version(hidden, 1))
    log(on(model, E.ModelVersionDeleted, version=55))
    log(on(model, E.RegisteredModelAliasSet, key="champion", version=3))
    first, total = projection.query(registry_reads.model_versions_page, "big", 0, 25)
    assert total == 59
    assert [int(v["version"]) for v in first] == [*range(60, 55, -1), *range(54, 34, -1)]
    last, total = projection.query(registry_reads.model_versions_page, "big", 50, 25)
    assert [int(v["version"]) for v in last] == list(range(9, 0, -1)) and total == 59
    assert last[-3]["aliases"] == ["champion"]
    past_the_end, total = projection.query(registry_reads.model_versions_page, "big", 100, 25)
    assert past_the_end == [] and total == 59

    everything = IdSet(frozenset(), allow=False)
    not_big = Scope(everything, IdSet(frozenset({model.registered_model_id}), allow=False))
    for offset in (0, 25):
        assert projection.query(registry_reads.model_versions_page, "big", offset, 25, scope=not_big) == (
            [],
            0,
        )
    found, total = projection.query(registry_reads.model_versions_page, "hidden", 0, 25, scope=not_big)
    assert [v["version"] for v in found] == ["1"] and total == 1
