"""One line of plain English per ledger event: what it changed, for the audit lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from api.web.templating import format_bytes, format_number, format_time

MAX_ITEMS = 6  # a log-batch of 1,000 metrics is summarised, not printed in full


def _pairs(items: Iterable[dict] | None, render: Callable[[dict], str]) -> str:
    items = list(items or [])
    shown = ", ".join(render(item) for item in items[:MAX_ITEMS])
    more = len(items) - MAX_ITEMS
    return f"{shown} and {more} more" if more > 0 else shown


def _key_value(item: dict) -> str:
    return f"{item['key']}={item['value']}"


def _metric(item: dict) -> str:
    return f"{item['key']}={format_number(item['value'])} (step {item.get('step') or 0})"


def _batch(ev: dict) -> str:
    parts = []
    if ev.get("params"):
        parts.append("params " + _pairs(ev["params"], _key_value))
    if ev.get("metrics"):
        parts.append("metrics " + _pairs(ev["metrics"], _metric))
    if ev.get("tags"):
        parts.append("tags " + _pairs(ev["tags"], _key_value))
    return "; ".join(parts) or "an empty batch"


def _run_updated(ev: dict) -> str:
    parts = []
    if ev.get("status"):
        parts.append(f"status → {ev['status']}")
    if ev.get("end_time"):
        parts.append(f"ended {format_time(ev['end_time'])}")
    if ev.get("name"):
        parts.append(f"renamed to {ev['name']}")
    return ", ".join(parts) or "no change"


def _datasets(ev: dict) -> str:
    parts = []
    if ev.get("datasets"):
        parts.append("datasets " + _pairs(ev["datasets"], lambda d: f"{d['name']} ({d['digest']})"))
    if ev.get("models"):
        parts.append("models " + _pairs(ev["models"], lambda m: m["model_id"]))
    return "; ".join(parts)


_DESCRIBERS: dict[str, Callable[[dict], str]] = {
    "experiment_created": lambda ev: f"created experiment {ev['name']!r}",
    "experiment_renamed": lambda ev: f"renamed experiment to {ev['name']!r}",
    "experiment_deleted": lambda ev: "deleted the experiment",
    "experiment_restored": lambda ev: "restored the experiment",
    "experiment_tag_set": lambda ev: f"tag {ev['key']}={ev['value']}",
    "experiment_tag_deleted": lambda ev: f"removed tag {ev['key']}",
    "run_created": lambda ev: f"started run {ev['name']!r} as {ev.get('user_id') or 'unknown'}",
    "run_updated": _run_updated,
    "run_deleted": lambda ev: "deleted the run",
    "run_restored": lambda ev: "restored the run",
    "batch_logged": _batch,
    "run_tag_deleted": lambda ev: f"removed tag {ev['key']}",
    "inputs_logged": _datasets,
    "outputs_logged": lambda ev: "output models " + _pairs(ev.get("models"), lambda m: m["model_id"]),
    "artifact_written": lambda ev: f"stored {ev['path']} ({format_bytes(ev.get('size'))})",
    "logged_model_created": lambda ev: f"created logged model {ev['name']!r} ({ev.get('model_id')})",
    "logged_model_updated": lambda ev: f"model {ev.get('model_id')} status → {ev.get('status')}",
    "logged_model_tags_set": lambda ev: "model tags " + _pairs(ev.get("tags"), _key_value),
    "logged_model_tag_deleted": lambda ev: f"removed model tag {ev['key']}",
    "logged_model_deleted": lambda ev: f"deleted logged model {ev.get('model_id')}",
    "registered_model_created": lambda ev: f"registered model {ev['name']!r}",
    "model_version_created": lambda ev: f"{ev['name']} version {ev['version']} from {ev['source']}",
    "registered_model_alias_set": lambda ev: f"alias {ev['name']}@{ev['key']} → version {ev['version']}",
    "registered_model_alias_deleted": lambda ev: f"removed alias {ev['name']}@{ev['key']}",
}


def describe(event: dict) -> str:
    """A short description of an event dict (the Struct's fields plus ``type``)."""
    describer = _DESCRIBERS.get(event.get("type", ""))
    if describer is None:
        return event.get("type", "unknown event")
    try:
        return describer(event)
    except (KeyError, TypeError):  # an event from a newer schema version: name it rather than fail the page
        return event.get("type", "unknown event")
