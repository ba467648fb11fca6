"""The sub-commands of ``trackledger``, one module each: ``add_parser(subparsers)`` and
``run(args, settings)``, which returns the exit status or raises ``CommandError``."""


class CommandError(Exception):
    """A mistake the user can fix: printed as one line (no traceback), exit status 1."""
