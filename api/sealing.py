"""Secrets the server must read back (webhook secrets), sealed with the server's key before they
reach the ledger: a segment, the SQL endpoint or a log line only ever holds the sealed form.

The key: ``TRACKLEDGER_SECRET_KEY`` (any text; the Fernet key is derived from it with HKDF), else
a random key in ``<state dir>/secret.key`` (mode 0600), created on first use. A server whose
state directory may be replaced (a remote store) should set the variable: without the key, sealed
secrets cannot be opened.
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_ENV = "TRACKLEDGER_SECRET_KEY"
KEY_FILE = "secret.key"


class SealError(Exception):
    """A sealed value that this server's key does not open."""


class Sealer:
    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    @classmethod
    def for_server(cls, state_dir: str | os.PathLike) -> Sealer:
        text = os.environ.get(KEY_ENV)
        if text:
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"trackledger secrets")
            return cls(base64.urlsafe_b64encode(derived.derive(text.encode())))
        return cls(_key_file(Path(state_dir) / KEY_FILE))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise SealError(
                f"a stored secret cannot be decrypted with this server's key (was {KEY_ENV} or "
                f"{KEY_FILE} in the state directory changed?)"
            ) from None


def _key_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = Fernet.generate_key()
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
        f.flush()
        os.fsync(f.fileno())
    with contextlib.suppress(FileExistsError):  # create-only: a concurrent first use keeps one key
        os.link(path.with_suffix(".tmp"), path)
    os.unlink(path.with_suffix(".tmp"))
    return path.read_bytes().strip()
