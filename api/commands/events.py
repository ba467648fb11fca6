"""``trackledger events``: the ledger's history, one line per event, oldest first."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from trackledger.api.commands import CommandError, existing_store
from trackledger.api.settings import Settings
from trackledger.ledger.events import SECRET_FIELDS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "events",
        help="print the event history (seq, time in UTC, actor, type, entities, summary)",
        description="Print the ledger's events from its segments (and, with --state-dir, the "
        "server's not-yet-rolled WAL), oldest first. Times are UTC; an actor ending in '?' is "
        "what the client claimed (not authenticated). The summaries are those of the events table.",
    )
    parser.add_argument("--run", dest="run_id", metavar="ID", help="only events of this run")
    parser.add_argument("--experiment", metavar="ID", help="only events of this experiment")
    parser.add_argument("--json", action="store_true", help="one JSON object per event (the whole event)")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="like tail -f: print events as they land on the server given by --server (its live stream)",
    )
    parser.add_argument("--server", metavar="URL", help="with --follow: the trackledger server to follow")
    parser.add_argument(
        "--after", type=int, default=0, metavar="SEQ", help="with --follow: start after this seq (default: 0)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec
    from trackledger.ledger.history import UnreadableSegment, history

    if args.follow or args.server:
        from trackledger.api.commands.follow import follow

        return follow(args)

    store = existing_store(settings)
    wal_dir = os.path.join(settings.state_dir, "wal") if settings.state_dir else None
    try:
        events = history(store, run_id=args.run_id, experiment_id=args.experiment, wal_dir=wal_dir)
    except UnreadableSegment as exc:
        raise CommandError(f"damaged segment {exc} (`trackledger verify` checks the whole store)") from None
    out = sys.stdout
    if args.json:
        for event in events:
            item = msgspec.to_builtins(event)
            for name in SECRET_FIELDS.intersection(item):
                item[name] = "REDACTED"
            out.write(msgspec.json.encode(item).decode() + "\n")
        return 0
    show_writer = len({e.writer for e in events}) > 1
    for event, summary in zip(events, summaries(events), strict=True):
        out.write(format_line(event, summary, show_writer) + "\n")
    return 0


def summaries(events: list) -> list[str]:
    from trackledger.ledger.schema import events_to_table
    from trackledger.projections.summaries import event_summaries

    return event_summaries(events_to_table(events)) if events else []


def format_line(event, summary: str, show_writer: bool = False) -> str:
    seq = f"{event.writer}:{event.seq}" if show_writer else str(event.seq)
    when = dt.datetime.fromtimestamp(event.ts / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    actor = (event.actor or "-") + ("" if event.actor_verified else "?")
    if event.claimed_actor:
        actor += f" for {event.claimed_actor}?"
    entities = [
        f"{name}={getattr(event, key)}"
        for key, name in (("experiment_id", "exp"), ("run_id", "run"), ("model_id", "model"))
        if getattr(event, key)
    ]
    text = " ".join([*entities, summary]) if summary else " ".join(entities)
    return f"{seq:>8}  {when}  {actor:<16}  {event.__struct_config__.tag:<26}  {text}"
