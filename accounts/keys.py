"""Better Auth's public keys by kid: from its jwks table (or JWKS URL), cached per process.

Keys are stored as Better Auth's jwt plugin stores them: the public JWK as JSON text
in `jwks."publicKey"` (the table's other columns differ by version). Each key only
ever verifies the algorithms of its own family (KEY_FAMILIES), never HS256.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.better_auth import column, setting_name, table_columns
from accounts.models import Jwk

logger = logging.getLogger(__name__)

# Unknown kids re-read the keys at most this often (a read of a few rows), so random kids
# cannot hammer the database; a rotated-in key is used at once (its first token re-reads).
KEY_REFRESH_INTERVAL_SECONDS = 1.0
# Known keys are re-read this often: a deleted key stops verifying on every process within
# this bound (docs/deployment.md). Sessions are read on every request: no such delay.
KEY_CACHE_TTL_SECONDS = float(settings.BETTER_AUTH_KEY_CACHE_SECONDS)
KEY_GRACE_PERIOD = timedelta(days=30)  # Better Auth keeps serving a rotated key this long
JWKS_FETCH_TIMEOUT_SECONDS = 3.0
PUBLIC_JWK_MEMBERS = frozenset({"kty", "crv", "x", "y", "n", "e", "alg", "kid", "use"})
# The algorithms a key's own family signs with; nothing else is ever accepted with it.
KEY_FAMILIES: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("OKP", "Ed25519"): ("EdDSA",),
    ("EC", "P-256"): ("ES256",),
    ("EC", "P-521"): ("ES512",),
    ("RSA", None): ("RS256", "PS256"),
}

# A jwks key by the algorithms its family allows (RSA: RS256 and PS256, the same key).
KeySet = dict[str, jwt.PyJWK]


class PublicKeyCache:
    """Better Auth's public keys by kid, kept in-process so a verification costs no query.

    An unknown kid triggers a re-read (a new key after rotation), at most once per
    KEY_REFRESH_INTERVAL_SECONDS of unknown kids (the periodic re-read does not count, so
    a new key never waits for it); all keys are re-read every KEY_CACHE_TTL_SECONDS.
    Hand-written: PyJWKClient caches only a JWKS it fetches itself, not database rows.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._keys: dict[str, KeySet] = {}
        self._loaded_at: float | None = None
        self._searched_at: float | None = None  # the last re-read for an unknown kid
        self._lock = threading.Lock()

    def get(self, kid: str) -> KeySet | None:
        if self._older_than(KEY_CACHE_TTL_SECONDS):
            self._refresh(KEY_CACHE_TTL_SECONDS)
        key = self._keys.get(kid)
        if key is None and self._may_search():
            self._refresh(0.0)
            key = self._keys.get(kid)
        return key

    def clear(self) -> None:
        with self._lock:
            self._keys, self._loaded_at, self._searched_at = {}, None, None

    def _may_search(self) -> bool:
        with self._lock:
            now = self.clock()
            if (
                self._searched_at is not None
                and now - self._searched_at < KEY_REFRESH_INTERVAL_SECONDS
            ):
                return False
            self._searched_at = now
            return True

    def _older_than(self, seconds: float) -> bool:
        return self._loaded_at is None or self.clock() - self._loaded_at >= seconds

    def _refresh(self, min_age: float) -> None:
        with self._lock:
            if not self._older_than(min_age):
                return  # another thread refreshed while this one waited
            keys = load_public_keys()  # a database error propagates (a 503) and is not counted
            self._loaded_at = self.clock()
            if keys is not None:
                self._keys = keys


def load_public_keys() -> dict[str, KeySet] | None:
    """All usable public keys by kid, from the JWKS URL when one is set, else the jwks table."""
    url = jwks_url()
    return _keys_from_url(url) if url else _keys_from_database()


def jwks_url() -> str:
    """BETTER_AUTH_JWKS_URL; `auto` derives Better Auth's endpoint from BETTER_AUTH_URL."""
    url = settings.BETTER_AUTH_JWKS_URL
    if url == "auto":
        return f"{settings.BETTER_AUTH_URL}/api/auth/jwks" if settings.BETTER_AUTH_URL else ""
    return url


def _keys_from_database() -> dict[str, KeySet]:
    """The jwks table's keys, reading only the columns this Better Auth version has.

    Like Better Auth's /jwks endpoint, keys expired beyond the grace period are gone
    (where the table has "expiresAt": 1.3's has not). Only the public columns are
    read: "privateKey" never leaves the database.
    """
    connection = connections[Jwk.objects.db]
    jwks = Jwk._meta.db_table
    present = table_columns(connection, jwks)
    if present is None:
        _warn_once(
            f"no {jwks!r} table: Better Auth JWTs cannot be verified (enable and migrate "
            f"Better Auth's jwt plugin, set {setting_name('jwks')}, or BETTER_AUTH_JWKS_URL)"
        )
        return {}
    quote = connection.ops.quote_name
    wanted = [Jwk._meta.pk.column, Jwk._meta.get_field("public_key").column]
    optional = [column("jwks", "expiresAt"), column("jwks", "alg")]
    selected = [quote(name) if name in present else "NULL" for name in wanted + optional]
    sql = f"SELECT {', '.join(selected)} FROM {quote(jwks)}"  # noqa: S608 - quoted names
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    cutoff = timezone.now() - KEY_GRACE_PERIOD
    keys = {}
    for kid, public_key, expires_at, alg in rows:
        if _expired(expires_at, cutoff):
            continue
        try:
            jwk_data = json.loads(public_key)
        except (TypeError, ValueError):
            logger.warning("jwks row %s: publicKey is not JSON; skipped", kid)
            continue
        if (key_set := _key_set(str(kid), jwk_data, alg)) is not None:
            keys[str(kid)] = key_set
    return keys


def _expired(expires_at: Any, cutoff: datetime) -> bool:
    if isinstance(expires_at, str):  # SQLite returns text, without a zone when Django wrote it
        expires_at = parse_datetime(expires_at)
        if expires_at is not None and timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at, UTC)
    return isinstance(expires_at, datetime) and expires_at <= cutoff


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _keys_from_url(url: str) -> dict[str, KeySet] | None:
    try:
        client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=JWKS_FETCH_TIMEOUT_SECONDS)
        data = client.fetch_data()
    except (jwt.PyJWKClientError, ValueError) as error:
        logger.warning("could not fetch Better Auth's JWKS from %s: %s", url, error)
        return None  # keep the keys already cached
    keys = {}
    for jwk_data in data.get("keys") if isinstance(data.get("keys"), list) else []:
        kid = jwk_data.get("kid") if isinstance(jwk_data, dict) else None
        if isinstance(kid, str) and (key_set := _key_set(kid, jwk_data, None)) is not None:
            keys[kid] = key_set
    return keys


def key_family(jwk_data: Any) -> tuple[str, ...]:
    """The algorithms a public JWK's own family signs with (none for any other key)."""
    if not isinstance(jwk_data, dict):
        return ()
    kty: Any = jwk_data.get("kty")  # any JSON value: the lookup finds only known families
    return KEY_FAMILIES.get((kty, None if kty == "RSA" else jwk_data.get("crv")), ())


def _key_set(kid: str, jwk_data: Any, alg: Any) -> KeySet | None:
    """Verification keys for the algorithms of the key's own family, or None (logged).

    The family follows from the key itself (OKP Ed25519 -> EdDSA, EC P-256 -> ES256,
    P-521 -> ES512, RSA -> RS256 or PS256). An algorithm the JWK or the row declares
    (its "alg", where the version stores one) narrows that to one, and must belong to
    it. Never a shared-secret ("oct") key, so never HS256 with a public key.
    Hand-written: PyJWK takes whichever algorithm it is given or the JWK names.
    """
    if not isinstance(jwk_data, dict):
        logger.warning("key %s: not a JWK object; skipped", kid)
        return None
    public = {name: value for name, value in jwk_data.items() if name in PUBLIC_JWK_MEMBERS}
    kty, crv = public.get("kty"), public.get("crv")
    if not (family := key_family(public)):
        logger.warning("key %s: key type %r/%r not allowed; skipped", kid, kty, crv)
        return None
    declared = public.get("alg") or alg or None  # Better Auth's own precedence
    if declared is not None and declared not in family:
        logger.warning("key %s: alg %r does not fit its %s key; skipped", kid, declared, kty)
        return None
    algorithms = (declared,) if declared else family
    try:
        return {algorithm: jwt.PyJWK(public, algorithm) for algorithm in algorithms}
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as error:
        logger.warning("key %s: unusable JWK (%r); skipped", kid, error)
        return None


public_keys = PublicKeyCache()


@receiver(setting_changed)
def _clear_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    # override_settings(BETTER_AUTH_JWKS_URL=...) must not be served keys of the old source.
    if setting.startswith("BETTER_AUTH_"):
        public_keys.clear()
