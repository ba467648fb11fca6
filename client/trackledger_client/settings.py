"""Where the spool lives and how long to wait, from ``TRACKLEDGER_*`` environment variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

SCHEMES = ("trackledger+http", "trackledger+https")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def server_url(tracking_uri: str) -> str:
    """``trackledger+https://host:5000/prefix`` -> ``https://host:5000/prefix``."""
    scheme, sep, rest = tracking_uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"not a trackledger tracking URI: {tracking_uri!r} (use trackledger+http://host:port)"
        )
    return f"{scheme.removeprefix('trackledger+')}://{rest}".rstrip("/")


def spool_root() -> Path:
    """Where the default spools live: the user's cache directory."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "trackledger" / "spool"


def default_spool_dir(url: str) -> Path:
    """One spool per server: ``<spool_root>/<host>-<port>``."""
    parsed = urlparse(url)
    name = f"{parsed.hostname}-{parsed.port or (443 if parsed.scheme == 'https' else 80)}"
    if parsed.path.strip("/"):
        name += "-" + parsed.path.strip("/").replace("/", "-")
    return spool_root() / name


def parse_size(text: str) -> int:
    """``1073741824``, ``512M``, ``1G``, ``1GiB`` -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 1073741824, 512M, 1G)")
    return int(float(match[1]) * 1024 ** " kmgt".index((match[2] or " ").lower()))


@dataclass(frozen=True)
class Settings:
    spool_dir: Path
    budget_bytes: int
    exit_flush_s: float
    read_wait_s: float
    max_backoff_s: float
    request_timeout_s: float

    @classmethod
    def from_env(cls, url: str) -> Settings:
        """From ``TRACKLEDGER_*`` variables; a bad value is a ValueError naming its variable."""
        spool_dir = os.environ.get("TRACKLEDGER_SPOOL_DIR")
        return cls(
            spool_dir=Path(spool_dir) if spool_dir else default_spool_dir(url),
            budget_bytes=_env("TRACKLEDGER_SPOOL_BUDGET", "1G", parse_size),
            exit_flush_s=_env("TRACKLEDGER_EXIT_FLUSH_S", "10", _seconds),
            read_wait_s=_env("TRACKLEDGER_READ_WAIT_S", "60", _seconds),
            max_backoff_s=_env("TRACKLEDGER_MAX_BACKOFF_S", "30", _seconds),
            request_timeout_s=_env("TRACKLEDGER_REQUEST_TIMEOUT_S", "30", _seconds),
        )


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("not a number of seconds >= 0")
    return value


def _env(name: str, default: str, parse):
    text = os.environ.get(name) or default
    try:
        return parse(text)
    except ValueError as e:
        raise ValueError(f"{name}={text!r}: {e}") from None
