"""Password hashes (scrypt, a slow KDF) and personal access tokens (random, stored as SHA-256).

A hash is self-describing (``scrypt$n$r$p$salt$digest``), so the cost can be raised later
without invalidating stored ones. Tokens read ``tl_<id>_<secret>``: the id finds the token
(and names it in the audit and for revocation), the 256-bit secret is what is checked; being
random, a plain SHA-256 of it cannot be searched the way a password's could.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

# ~50 ms and 16 MB per hash on one core: slow for guessing, paid once per credential thanks to
# the verified-credential cache (see authn).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "tl_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


def new_token() -> tuple[str, str]:
    """A fresh token and its id: the token is shown once, only its hash is kept."""
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(token: str) -> str | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    return token_id if sep and token_id and secret else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
