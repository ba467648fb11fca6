"""``trackledger events --follow --server URL``: print a server's events as they land, like
``tail -f``, from its ``/api/ledger/stream``; a dropped connection is resumed after the last event
printed (``Last-Event-ID``), so nothing is skipped or printed twice."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import msgspec
from trackledger.api.commands.events import format_line, summaries
from trackledger.ledger.events import AnyEvent

READ_TIMEOUT_S = 60  # the server sends a heartbeat every 15 s
RECONNECT_S = 1.0
_decoder = msgspec.json.Decoder(AnyEvent)


def follow(args) -> int:
    if not (args.follow and args.server):
        print(
            "trackledger events: --follow needs --server URL, and --server is only for --follow",
            file=sys.stderr,
        )
        return 2
    if args.after < 0:
        print(f"trackledger events: --after must be a seq, 0 or more, got {args.after}", file=sys.stderr)
        return 2
    filters = {k: v for k, v in (("run_id", args.run_id), ("experiment_id", args.experiment)) if v}
    url = args.server.rstrip("/") + "/api/ledger/stream"
    if filters:
        url += "?" + urllib.parse.urlencode(filters)
    last = args.after
    try:
        while True:
            try:
                last = _read(url, last, args.json)
            except urllib.error.HTTPError as exc:
                print(
                    f"trackledger events: {args.server} answered {exc.code}: {exc.read()[:300]!r}",
                    file=sys.stderr,
                )
                return 1
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                print(f"trackledger events: lost {args.server} ({reason}); reconnecting", file=sys.stderr)
            time.sleep(RECONNECT_S)
    except KeyboardInterrupt:
        return 0


def _read(url: str, last: int, as_json: bool) -> int:
    """Print the stream's events until it ends; returns the seq of the last one printed."""
    request = urllib.request.Request(url, headers={"Accept": "text/event-stream", "Last-Event-ID": str(last)})
    with urllib.request.urlopen(request, timeout=READ_TIMEOUT_S) as response:
        data = None
        for raw in response:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("data: "):
                data = line[6:]
            elif not line and data is not None:
                event = _decoder.decode(data)
                sys.stdout.write((data if as_json else format_line(event, summaries([event])[0])) + "\n")
                sys.stdout.flush()
                last, data = event.seq, None
    return last
