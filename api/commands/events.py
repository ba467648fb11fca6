"""``trackledger events``: the ledger's history, one line per event, oldest first."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from trackledger.api.settings import Settings

_ENVELOPE = {
    "id",
    "seq",
    "ts",
    "actor",
    "actor_verified",
    "writer",
    "remote_addr",
    "user_agent",
    "experiment_id",
    "run_id",
    "model_id",
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "events",
        help="print the event history (seq, time, actor, type, summary)",
        description="Print the ledger's events from its segments (and, with --state-dir, the "
        "server's not-yet-rolled WAL), oldest first.",
    )
    parser.add_argument("--run", dest="run_id", metavar="ID", help="only events of this run")
    parser.add_argument("--experiment", metavar="ID", help="only events of this experiment")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec
    from trackledger.ledger.history import history

    wal_dir = os.path.join(settings.state_dir, "wal") if settings.state_dir else None
    events = history(
        settings.store,
        run_id=args.run_id,
        experiment_id=args.experiment,
        wal_dir=wal_dir,
        storage_options=settings.store_options,
    )
    writers = {e.writer for e in events}
    out = sys.stdout
    for event in events:
        if args.json:
            out.write(msgspec.json.encode(event).decode() + "\n")
        else:
            out.write(format_line(event, show_writer=len(writers) > 1) + "\n")
    return 0


def format_line(event, show_writer: bool = False) -> str:
    seq = f"{event.writer}:{event.seq}" if show_writer else str(event.seq)
    when = dt.datetime.fromtimestamp(event.ts / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    actor = (event.actor or "-") + ("" if event.actor_verified else "?")
    return f"{seq:>8}  {when}  {actor:<16}  {event.__struct_config__.tag:<26}  {summarize(event)}"


def summarize(event, width: int = 100) -> str:
    """Entity ids, then each non-envelope field: scalars as key=value, lists as a count and keys."""
    parts = [
        f"{name}={getattr(event, key)}"
        for key, name in (("experiment_id", "exp"), ("run_id", "run"), ("model_id", "model"))
        if getattr(event, key)
    ]
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if name in _ENVELOPE or value is None or value == []:
            continue
        if isinstance(value, list):
            keys = [getattr(item, "key", None) or getattr(item, "name", None) or "" for item in value]
            shown = ",".join(dict.fromkeys(k for k in keys if k))
            parts.append(f"{len(value)} {name}" + (f" ({shown})" if shown else ""))
        else:
            parts.append(f"{name}={value}")
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"
