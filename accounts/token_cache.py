"""JWTs that verified recently, so a client's next requests skip the signature check.

A client sends the same JWT for its whole lifetime, and the signature check is most of
a verification's cost. A hit is only served until the token's expiry (plus leeway) and
while the key it verified with is still the very key object in use (the key cache's,
or the current BETTER_AUTH_SECRET), so a rotated, expired or removed key, or a changed
secret, sends it back through the full verification. Bounded: the oldest entries make
room. Hand-written: a hit depends on the key still being in use, which no cache
library checks.
"""

import threading
import time
from typing import Generic, TypeVar

import jwt
from django.conf import settings

from accounts.keys import public_keys

VERIFIED_TOKEN_CACHE_SIZE = 2048  # per process; an entry is one token and its claims (~1 KB)

Verified = TypeVar("Verified")


class VerifiedTokenCache(Generic[Verified]):
    """Verified tokens by their text, served while unexpired and their key is in use."""

    def __init__(self, size: int = VERIFIED_TOKEN_CACHE_SIZE) -> None:
        self.size = size
        # token -> (what verified, the key it verified with, its kid, the time.time() after
        # which it is expired): a plain tuple, as every repeat request unpacks one and a
        # NamedTuple unpacks through the iterator protocol.
        self._entries: dict[str, tuple[Verified, jwt.PyJWK | str, str | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Verified | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        verified, key, kid, until = entry
        if time.time() > until:
            return None
        if isinstance(key, str):
            if key != settings.BETTER_AUTH_SECRET:
                return None
        elif kid is None or (public_keys.get(kid) or {}).get(key.algorithm_name) is not key:
            return None
        return verified

    def add(
        self, token: str, verified: Verified, *, key: jwt.PyJWK | str, kid: str | None, until: float
    ) -> None:
        with self._lock:
            while len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))  # oldest first
            self._entries[token] = (verified, key, kid, until)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
