"""The sub-commands of ``trackledger``, one module each: ``add_parser(subparsers)`` and
``run(args, settings)``, which returns the exit status or raises ``CommandError``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trackledger.api.settings import Settings
    from trackledger.ledger import Store


class CommandError(Exception):
    """A mistake the user can fix: printed as one line (no traceback), exit status 1."""


def existing_store(settings: Settings) -> Store:
    """The store the settings name. A store that is not there is an error, not an empty history,
    unless the given state directory has a WAL (a server's events before its first segment)."""
    from trackledger.ledger import open_store

    store = open_store(settings.store, settings.store_options)
    has_wal = settings.state_dir is not None and os.path.isdir(os.path.join(settings.state_dir, "wal"))
    if not has_wal and not store.exists(""):
        raise CommandError(f"no store at {settings.store}: check --store (or TRACKLEDGER_STORE)")
    return store
