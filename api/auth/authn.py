"""Who a request is: HTTP Basic (MLFLOW_TRACKING_USERNAME/PASSWORD), Bearer tokens
(MLFLOW_TRACKING_TOKEN) or the web page's signed session cookie.

A password check is a slow KDF (~50 ms); paying it per request is what makes MLflow's basic auth
40-90x slower (mlflow#9684). A verified ``Authorization`` value is therefore cached in memory,
keyed by its SHA-256 (never the value itself), bounded, and dropped whenever accounts change
(a password change, revocation, deletion, or permission change reloads ``Accounts``).

Failed attempts are slowed down per user name and per client address: after a few failures in a
window each further attempt for that name or from that address waits longer (asyncio.sleep, so
nobody else waits), and a cached, already-verified credential never waits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from pathlib import Path

from trackledger.api.auth.accounts import Accounts
from trackledger.api.auth.secrets import token_hash, token_id_of, verify_password
from trackledger.api.threads import blocking

CACHE_ENTRIES = 10_000
SESSION_COOKIE = "trackledger_session"
SESSION_TTL_S = 12 * 3600
# A verification for an unknown user still runs the KDF, so timing does not tell which names exist.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class Unauthenticated(Exception):
    """Credentials were given and are wrong (or malformed, expired, revoked)."""


class Throttle:
    """Failures per key in a sliding window; the delay doubles past ``free`` failures."""

    def __init__(self, window_s: float = 900, free: int = 5, base_s: float = 0.25, max_s: float = 30) -> None:
        self.window_s, self.free, self.base_s, self.max_s = window_s, free, base_s, max_s
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def delay(self, *keys: str) -> float:
        now = time.monotonic()
        count = max(len(self._recent(k, now)) for k in keys)
        return 0.0 if count < self.free else min(self.max_s, self.base_s * 2 ** (count - self.free))

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 100_000:  # bounded: forget the quietest keys
            for key in [k for k in self._failures if not self._recent(k, now)]:
                del self._failures[key]
        for key in keys:
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


class Authenticator:
    def __init__(self, accounts: Accounts, state_dir: Path) -> None:
        self.accounts = accounts
        self.throttle = Throttle()
        self._cache: OrderedDict[bytes, tuple[str, int | None]] = OrderedDict()
        self._session_key = _session_key(state_dir)
        accounts.on_reload(self._cache.clear)

    async def identify(self, authorization: str | None, cookie: str | None, address: str) -> str | None:
        """The verified user, None when no credential was sent; ``Unauthenticated`` when wrong."""
        if authorization:
            return await self._from_header(authorization, address)
        if cookie:
            return self.session_user(cookie)
        return None

    async def _from_header(self, value: str, address: str) -> str:
        key = hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
        hit = self._cache.get(key)
        if hit is not None:
            username, expires_at = hit
            if expires_at is None or expires_at > time.time() * 1000:
                return username
            self._cache.pop(key, None)
        scheme, _, credential = value.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            username, password = _basic(credential.strip())
            throttle_keys = (f"user:{username}", f"addr:{address}")
            await self._wait(throttle_keys)
            stored = self.accounts.password_hash(username)
            ok = await blocking(verify_password, password, stored or _DUMMY_HASH)
            if not (ok and stored):
                self.throttle.failed(*throttle_keys)
                raise Unauthenticated("Incorrect username or password")
            self.throttle.succeeded(throttle_keys[0])
            self._remember(key, username, None)
            return username
        if scheme == "bearer":
            token = credential.strip()
            throttle_keys = (f"addr:{address}",)
            await self._wait(throttle_keys)
            found = self.accounts.token(token_id_of(token) or "")
            if found is None or not hmac.compare_digest(found.hash, token_hash(token)):
                self.throttle.failed(*throttle_keys)
                raise Unauthenticated("Invalid or revoked token")
            if found.expires_at is not None and found.expires_at <= time.time() * 1000:
                raise Unauthenticated("The token has expired")
            self._remember(key, found.username, found.expires_at)
            return found.username
        raise Unauthenticated("Unsupported Authorization scheme: use Basic or Bearer")

    async def _wait(self, keys: tuple[str, ...]) -> None:
        delay = self.throttle.delay(*keys)
        if delay:
            await asyncio.sleep(delay)

    def _remember(self, key: bytes, username: str, expires_at: int | None) -> None:
        self._cache[key] = (username, expires_at)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    async def check_password(self, username: str, password: str, address: str) -> bool:
        """For the sign-in form and self-service password changes: throttled like Basic."""
        throttle_keys = (f"user:{username}", f"addr:{address}")
        await self._wait(throttle_keys)
        stored = self.accounts.password_hash(username)
        ok = await blocking(verify_password, password, stored or _DUMMY_HASH)
        if ok and stored:
            self.throttle.succeeded(throttle_keys[0])
            return True
        self.throttle.failed(*throttle_keys)
        return False

    # Sessions (the web page) ---------------------------------------------------------------
    # ``username.expiry.signature``: the signature covers a digest of the user's password hash, so
    # a password change (or a deleted user) ends every session of that user.

    def new_session(self, username: str) -> str:
        expires = int(time.time()) + SESSION_TTL_S
        name = base64.urlsafe_b64encode(username.encode()).decode().rstrip("=")  # no cookie quoting
        return f"{name}.{expires}.{self._sign(username, expires)}"

    def session_user(self, cookie: str) -> str:
        try:
            name, expires, signature = cookie.split(".")
            username = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            expires_at = int(expires)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Invalid session") from None
        if expires_at < time.time() or not self.accounts.exists(username):
            raise Unauthenticated("The session has expired")
        if not hmac.compare_digest(signature, self._sign(username, expires_at)):
            raise Unauthenticated("Invalid session")
        return username

    def _sign(self, username: str, expires: int) -> str:
        password = hashlib.sha256((self.accounts.password_hash(username) or "").encode()).hexdigest()
        message = f"{username}\0{expires}\0{password}".encode()
        return hmac.new(self._session_key, message, hashlib.sha256).hexdigest()


def _basic(credential: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthenticated("Malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise Unauthenticated("Malformed Basic credentials")
    return username, password


def _session_key(state_dir: Path) -> bytes:
    """A key of this server's state dir, so sessions survive a restart; created on first use."""
    path = Path(state_dir) / "session.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
