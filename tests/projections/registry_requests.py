"""Registry requests for the replay properties, drawn as the write path would accept them, and the
registry they leave, to check the tables against."""

from __future__ import annotations

from hypothesis import strategies as st
from trackledger.ledger import events as E

from tests.projections.conftest import make

keys = st.sampled_from(["a", "b"])
values = st.sampled_from(["x", "y", "z"])


REGISTRY_KINDS = (
    "rm_create",
    "rm_rename",
    "rm_rename",
    "rm_update",
    "rm_delete",
    "rm_tag",
    "rm_tag_del",
    "mv_create",
    "mv_create",
    "mv_update",
    "mv_stage",
    "mv_stage",
    "mv_delete",
    "mv_tag",
    "mv_tag_del",
    "alias",
    "alias_del",
)
MODEL_NAMES = ["rm", "m2", "m3"]


class Registry:
    """The registry as the write path knows it, by model name, to draw only requests the server
    would accept, and to check what the tables hold after them. The setup's model "rm" predates
    registered_model_id: its key is its name."""

    def __init__(self) -> None:
        versions = {n: {"stage": "None", "description": "", "tags": {"a": "x"}} for n in (1, 2)}
        self.models: dict[str, dict] = {
            "rm": {
                "key": "rm",
                "latest": 2,
                "description": "",
                "tags": {"a": "x"},
                "aliases": {},
                "versions": versions,
            }
        }

    def request(self, data, kind: str) -> list:
        free = [n for n in MODEL_NAMES if n not in self.models]
        if kind == "rm_create" or not self.models:
            if not free:
                return []
            name = data.draw(st.sampled_from(free))
            tag = E.Tag(data.draw(keys), data.draw(values))
            event = make(E.RegisteredModelCreated, name=name, tags=[tag])
            event = E.RegisteredModelCreated(**{**_fields(event), "registered_model_id": event.id})
            self.models[name] = {
                "key": event.id,
                "latest": 0,
                "description": "",
                "tags": {tag.key: tag.value},
                "aliases": {},
                "versions": {},
            }
            return [event]
        name = data.draw(st.sampled_from(sorted(self.models)))
        model = self.models[name]
        versions = model["versions"]

        def on(cls, **fields):
            return make(cls, name=name, registered_model_id=model["key"], **fields)

        if kind == "rm_rename":
            new_name = data.draw(st.sampled_from([name, *free]))
            self.models[new_name] = self.models.pop(name)
            return [on(E.RegisteredModelRenamed, new_name=new_name, versions=sorted(versions))]
        if kind == "rm_update":
            model["description"] = data.draw(st.sampled_from(["", "d"]))
            return [on(E.RegisteredModelUpdated, description=model["description"])]
        if kind == "rm_delete":
            del self.models[name]
            return [on(E.RegisteredModelDeleted)]
        if kind in ("rm_tag", "rm_tag_del", "alias_del"):
            key = data.draw(keys)
            if kind == "rm_tag":
                model["tags"][key] = data.draw(values)
                return [on(E.RegisteredModelTagSet, key=key, value=model["tags"][key])]
            model["tags" if kind == "rm_tag_del" else "aliases"].pop(key, None)
            cls = E.RegisteredModelTagDeleted if kind == "rm_tag_del" else E.RegisteredModelAliasDeleted
            return [on(cls, key=key)]
        if kind == "mv_create" or not versions:
            number = model["latest"] = model["latest"] + 1
            tag = E.Tag(data.draw(keys), data.draw(values))
            versions[number] = {"stage": "None", "description": "", "tags": {tag.key: tag.value}}
            return [on(E.ModelVersionCreated, version=number, source="s", tags=[tag])]
        number = data.draw(st.sampled_from(sorted(versions)))
        version = versions[number]
        if kind == "mv_update":
            version["description"] = data.draw(st.sampled_from([None, "d"]))
            return [on(E.ModelVersionUpdated, version=number, description=version["description"])]
        if kind == "mv_stage":
            stage = data.draw(st.sampled_from(["None", "Staging", "Production", "Archived"]))
            archive = stage in ("Staging", "Production") and data.draw(st.booleans())
            others = [
                n for n, v in sorted(versions.items()) if archive and v["stage"] == stage and n != number
            ]
            changes = [(number, stage)] + [(n, "Archived") for n in others]
            for n, s in changes:
                versions[n]["stage"] = s
            return [on(E.ModelVersionStageChanged, version=n, stage=s) for n, s in changes]
        if kind == "mv_delete":
            del versions[number]
            model["aliases"] = {a: n for a, n in model["aliases"].items() if n != number}
            return [on(E.ModelVersionDeleted, version=number)]
        key = data.draw(keys)
        if kind == "mv_tag":
            version["tags"][key] = data.draw(values)
            return [on(E.ModelVersionTagSet, version=number, key=key, value=version["tags"][key])]
        if kind == "mv_tag_del":
            version["tags"].pop(key, None)
            return [on(E.ModelVersionTagDeleted, version=number, key=key)]
        model["aliases"][key] = number
        return [on(E.RegisteredModelAliasSet, key=key, version=number)]


def registry_in(read) -> dict[str, dict]:
    """The registry the tables hold, shaped as ``Registry.models``; rows left of a deleted model fail."""
    models = {}
    for key, name, description in read(
        "SELECT registered_model_id, name, description FROM registered_models"
    ):
        models[key] = {"key": key, "name": name, "latest": 0, "description": description, "tags": {},
                       "aliases": {}, "versions": {}}  # fmt: skip
    for key, *_ in read(
        """SELECT registered_model_id FROM registered_model_tags UNION ALL
           SELECT registered_model_id FROM registered_model_aliases UNION ALL
           SELECT registered_model_id FROM model_versions UNION ALL
           SELECT registered_model_id FROM model_version_tags"""
    ):
        assert key in models, f"a row of the deleted model {key} is left"
    for key, tag, value in read("SELECT registered_model_id, key, value FROM registered_model_tags"):
        models[key]["tags"][tag] = value
    for key, alias, number in read(
        "SELECT registered_model_id, alias, version FROM registered_model_aliases"
    ):
        models[key]["aliases"][alias] = number
    for key, number, stage, description, deleted in read(
        "SELECT registered_model_id, version, current_stage, description, deleted FROM model_versions"
    ):
        models[key]["latest"] = max(models[key]["latest"], number)
        if not deleted:
            models[key]["versions"][number] = {"stage": stage, "description": description, "tags": {}}
    for key, number, tag, value in read(
        "SELECT registered_model_id, version, key, value FROM model_version_tags"
    ):
        if number in models[key]["versions"]:
            models[key]["versions"][number]["tags"][tag] = value
    return {model.pop("name"): model for model in models.values()}


def _fields(event) -> dict:
    return {f: getattr(event, f) for f in event.__struct_fields__}
