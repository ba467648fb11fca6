"""Account changes straight on the store, with the server stopped (like ``rebuild``): the first
admin, and tokens for scripts. The events are the same as through the API; their actor is the
operator's login, unverified (whoever can write the store can do anything anyway).

``users`` and ``tokens`` have actions (``create``, ``list`` ...); the store and state-dir options
belong to each action, so they go after it: ``trackledger users create NAME --store DIR``.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
from collections.abc import Iterator

from trackledger.api.commands import CommandError
from trackledger.api.settings import Settings, add_options


def add_action(actions, name: str, command: str, run, **kwargs):
    """An action parser of ``command`` with the command's settings, running ``run(args, settings)``."""
    parser = actions.add_parser(name, **kwargs)
    add_options(parser, command)
    parser.set_defaults(run=lambda args, settings: checked(run, args, settings))
    return parser


def checked(run, args, settings: Settings) -> int:
    """MLflow-style refusals of the shared checks (a bad user name ...) become one line."""
    from trackledger.api.errors import MlflowError

    try:
        return run(args, settings)
    except MlflowError as exc:
        raise CommandError(exc.message) from None


@contextlib.contextmanager
def offline_store(settings: Settings) -> Iterator[tuple]:
    """The store's ledger, its projection (caught up) and a write index of the accounts in it,
    for ``writes.accounts`` to decide against as the server's write service does."""
    from trackledger.api.writes.write_index import WriteIndex
    from trackledger.ledger import Ledger
    from trackledger.projections import Projection

    state_dir = settings.state_path
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        ledger = Ledger(settings.store, state_dir, storage_options=settings.store_options)
    except RuntimeError as exc:
        raise CommandError(f"{exc} (stop the server first)") from None
    with ledger:
        projection = Projection(ledger, state_dir / "projections.duckdb")
        try:
            index = WriteIndex(projection)
            index.load_accounts()
            yield ledger, projection, index
        finally:
            projection.flush()
            projection.close()


def append(ledger, projection, build) -> list:
    """``build(envelope)`` -> events (a function of ``writes.accounts`` bound to its arguments),
    appended durably and applied."""
    from trackledger.ledger.events import new_event_id

    actor = f"cli:{getpass.getuser()}"

    def envelope(i: int, **keys) -> dict:
        return {"id": new_event_id(), "actor": actor, **keys}

    stamped = ledger.append(build(envelope))
    projection.submit(stamped)
    projection.flush()
    return stamped


def read_password(path: str | None) -> str:
    """From --password-file, else a prompt (twice) on a terminal, else stdin's first line."""
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except OSError as exc:
            raise CommandError(f"cannot read the password file: {exc.strerror}") from None
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise CommandError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")
