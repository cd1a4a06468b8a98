"""Verify Better Auth credentials with plain functions (no DRF: authentication.py maps errors).

What is accepted mirrors what real Better Auth 1.3, 1.4 and 1.7 servers issue
(measured; one real token, key and session are in tests/accounts/vectors.json, and
tests/better_auth/ runs those servers):

- JWTs of its `jwt` plugin: EdDSA (Ed25519) by default, or ES256, ES512, RS256,
  PS256; header `kid` = `jwks.id`, the public JWK stored as JSON text in
  `jwks."publicKey"` (the table's other columns differ by version); `iss` and `aud`
  are the app's base URL; 15-minute lifetime by default.
- HS256 JWTs signed with BETTER_AUTH_SECRET: Better Auth has no such mode, but
  many Next.js apps sign their own token for their backend this way.
- Session tokens (`session.token`), raw or signed as `token.base64(HMAC-SHA256)`,
  which is what the `set-auth-token` header and the session cookie carry.

Everything untrusted is size-bounded before it is decoded, and every failure is a
TokenError whose message is safe to show the client.
"""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import jwt
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.better_auth import (
    column,
    setting_name,
    table_columns,
)
from accounts.models import Jwk

logger = logging.getLogger(__name__)

Claims = dict[str, Any]

# What Better Auth's jwt plugin can sign with; HS256 is only ever checked with the secret.
ASYMMETRIC_ALGORITHMS = frozenset({"EdDSA", "ES256", "ES512", "RS256", "PS256"})
SECRET_ALGORITHM = "HS256"

MAX_TOKEN_LENGTH = 8192  # a Better Auth JWT carries the user row: ~700 characters in practice
MAX_JWT_HEADER_LENGTH = 1024  # encoded; Better Auth's is 80 characters
MAX_ID_LENGTH = 255  # Better Auth ids (user, session token, kid) are opaque strings up to 255
MAX_SESSION_CREDENTIAL_LENGTH = 1024  # token + "." + 44-character signature, maybe URL-encoded
LEEWAY_SECONDS = 30  # clock skew tolerated on exp, nbf and iat
# Unknown kids re-read the keys at most this often (a read of a few rows), so random kids
# cannot hammer the database; a rotated-in key is used at once (its first token re-reads).
KEY_REFRESH_INTERVAL_SECONDS = 1.0
# Known keys are re-read this often: a deleted key stops verifying on every process within
# this bound (docs/deployment.md). Sessions are read on every request: no such delay.
KEY_CACHE_TTL_SECONDS = float(settings.BETTER_AUTH_KEY_CACHE_SECONDS)
KEY_GRACE_PERIOD = timedelta(days=30)  # Better Auth keeps serving a rotated key this long
JWKS_FETCH_TIMEOUT_SECONDS = 3.0
VERIFIED_TOKEN_CACHE_SIZE = 2048  # per process; an entry is one token and its claims (~1 KB)
PUBLIC_JWK_MEMBERS = frozenset({"kty", "crv", "x", "y", "n", "e", "alg", "kid", "use"})
# The algorithms a key's own family signs with; nothing else is ever accepted with it.
KEY_FAMILIES: dict[tuple[object, object], tuple[str, ...]] = {
    ("OKP", "Ed25519"): ("EdDSA",),
    ("EC", "P-256"): ("ES256",),
    ("EC", "P-521"): ("ES512",),
    ("RSA", None): ("RS256", "PS256"),
}
APP_TOKEN_SUBJECT_CLAIMS = ("sub", "id", "user_id", "userId")
NUMBER = (int, float)  # a finite JSON number: NaN/Infinity never parse, 1e999 is refused
CLAIM_TYPES: dict[str, type | tuple[type, ...]] = {
    "exp": NUMBER,
    "nbf": NUMBER,
    "iat": NUMBER,
    "sub": str,
    "jti": str,
}
JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")  # unpadded base64url


class TokenError(Exception):
    """A credential failed verification; the message is specific but safe to return."""


# A jwks key by the algorithms its family allows (RSA: RS256 and PS256, the same key).
KeySet = dict[str, jwt.PyJWK]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A JWT whose signature and claims checked out; `user_id` still has to exist."""

    user_id: str
    algorithm: str
    claims: Claims


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three segments; session tokens (signed or not) have at most two."""
    return token.count(".") == 2


def verify_jwt(token: str) -> VerifiedToken:
    """Verify a Better Auth JWT (keys from the jwks table) or an HS256 app token."""
    cached = verified_tokens.get(token)
    if cached is not None:
        return cached
    header = _jwt_header(token)
    algorithm = header.get("alg")
    key: jwt.PyJWK | str
    if algorithm == SECRET_ALGORITHM:
        if not settings.BETTER_AUTH_SECRET:
            raise TokenError("unsupported algorithm")
        key = settings.BETTER_AUTH_SECRET  # never a public key: no algorithm confusion
    elif isinstance(algorithm, str) and algorithm in ASYMMETRIC_ALGORITHMS:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_ID_LENGTH:
            raise TokenError("unknown key id")
        key_set = public_keys.get(kid)
        if key_set is None:
            raise TokenError("unknown key id")
        if (public_key := key_set.get(algorithm)) is None:
            raise TokenError("algorithm not allowed for this key")
        key = public_key  # a PyJWK bound to one algorithm of the key's own family
    else:
        raise TokenError("unsupported algorithm")  # includes "none"
    claims = _decode(token, header, key)
    app_token = algorithm == SECRET_ALGORITHM
    # An app token must name this deployment too once BETTER_AUTH_URL says what it is.
    _check_issuer_and_audience(claims, required=not app_token or bool(settings.BETTER_AUTH_URL))
    if app_token:
        _check_lifetime(claims, settings.APP_TOKEN_MAX_LIFETIME_SECONDS)
    user_id = _subject(claims, APP_TOKEN_SUBJECT_CLAIMS if app_token else ("sub",))
    verified = VerifiedToken(user_id=user_id, algorithm=algorithm, claims=claims)
    verified_tokens.add(token, verified, key, header.get("kid"))
    return verified


def _jwt_header(token: str) -> dict[str, Any]:
    """The decoded JOSE header, refusing oversized input before any decoding."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token too large")
    if not JWS_COMPACT.fullmatch(token):
        raise TokenError("malformed token")
    segment = token.partition(".")[0]
    if len(segment) > MAX_JWT_HEADER_LENGTH:
        raise TokenError("token header too large")
    try:
        header = _parse_segment(segment)
    except (ValueError, RecursionError):  # binascii, Unicode and JSON errors are ValueErrors
        raise TokenError("malformed token") from None
    if not isinstance(header, dict):
        raise TokenError("malformed token")
    return header


def _parse_segment(segment: str) -> Any:
    """A base64url JSON segment; an object with a name twice is a ValueError."""
    return json.loads(
        _b64decode(segment), object_pairs_hook=_unique_members, parse_constant=_no_constant
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity, which json.loads accepts


def _b64decode(segment: str) -> bytes:
    """Unpadded base64url (the alphabet was checked by JWS_COMPACT)."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 and 7519 let a parser refuse duplicate names, or keep the last one. Refusing
    # means no two parsers (Better Auth's, a proxy's, ours) can read different claims.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


def _decode(token: str, header: dict[str, Any], key: jwt.PyJWK | str) -> Claims:
    """The claims of a compact JWS whose signature `key` verifies, after the time checks.

    What PyJWT's `jwt.decode` does, minus its generality: about a quarter of a
    verification's cost on top of Ed25519's own (checked by the tests with tokens
    PyJWT signs). The signature algorithms themselves are PyJWT's.
    """
    if "crit" in header or header.get("b64", True) is not True:
        raise TokenError("unsupported critical header")  # no JWS extension is understood here
    signing_input, _, encoded_signature = token.rpartition(".")
    try:
        signature = _b64decode(encoded_signature)
    except ValueError:
        raise TokenError("malformed token") from None
    message = signing_input.encode("ascii")
    if isinstance(key, str):
        expected = hmac.new(key.encode(), message, hashlib.sha256).digest()
        valid = hmac.compare_digest(signature, expected)
    elif key.algorithm_name != header["alg"]:
        raise TokenError("algorithm not allowed for this key")
    else:
        valid = key.Algorithm.verify(message, key.key, signature)
    if not valid:
        raise TokenError("invalid signature")
    try:
        claims = _parse_segment(signing_input.partition(".")[2])
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise TokenError("malformed token") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed token")
    _check_claims(claims)
    return claims


def _check_claims(claims: Claims) -> None:
    """RFC 7519's registered claims: types, then `exp` (required), `nbf`, `iat` with leeway."""
    if "exp" not in claims:
        raise TokenError("token has no exp claim")
    for name, kinds in CLAIM_TYPES.items():
        value = claims.get(name)
        if name in claims and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise TokenError(f"invalid {name} claim")
        if isinstance(value, float) and not math.isfinite(value):  # 1e999 parses as inf
            raise TokenError(f"invalid {name} claim")
    now = time.time()
    if claims["exp"] <= now - LEEWAY_SECONDS:
        raise TokenError("token expired")
    if any(claims.get(name, 0) > now + LEEWAY_SECONDS for name in ("nbf", "iat")):
        raise TokenError("token not yet valid")


def _check_lifetime(claims: Claims, max_seconds: int) -> None:
    """`exp` at most `max_seconds` ahead (and after `iat`, when present): a leaked token
    must not stay valid for ever."""
    now = time.time()
    if claims["exp"] > now + max_seconds + LEEWAY_SECONDS:
        raise TokenError("token lifetime too long")
    if "iat" in claims and claims["exp"] - claims["iat"] > max_seconds + LEEWAY_SECONDS:
        raise TokenError("token lifetime too long")


def _check_issuer_and_audience(claims: Claims, *, required: bool) -> None:
    """Better Auth always sets iss and aud; app-signed HS256 tokens often omit them.

    So they are required on Better Auth's tokens, and on app tokens once BETTER_AUTH_URL
    is set; otherwise checked where present. An empty setting disables its check.
    """
    issuer = settings.BETTER_AUTH_ISSUER
    if issuer and (required or "iss" in claims) and claims.get("iss") != issuer:
        raise TokenError("invalid issuer")
    audience = settings.BETTER_AUTH_AUDIENCE
    if audience and (required or "aud" in claims):
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if audience not in audiences:
            raise TokenError("invalid audience")


def _printable(value: str) -> bool:
    """No control characters, separators or lone surrogates: PostgreSQL text cannot hold
    NUL, and an id or token with any of them is never one Better Auth made."""
    return value.isprintable()


def _subject(claims: Claims, names: tuple[str, ...]) -> str:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            if len(value) > MAX_ID_LENGTH or not _printable(value):
                raise TokenError("invalid subject")
            return value
    raise TokenError("token has no subject")


class PublicKeyCache:
    """Better Auth's public keys by kid, kept in-process so a verification costs no query.

    An unknown kid triggers a re-read (a new key after rotation), at most once per
    KEY_REFRESH_INTERVAL_SECONDS of unknown kids (the periodic re-read does not count, so
    a new key never waits for it); all keys are re-read every KEY_CACHE_TTL_SECONDS.
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
    kty, crv = jwk_data.get("kty"), jwk_data.get("crv")
    return KEY_FAMILIES.get((kty, None if kty == "RSA" else crv), ())


def _key_set(kid: str, jwk_data: Any, alg: Any) -> KeySet | None:
    """Verification keys for the algorithms of the key's own family, or None (logged).

    The family follows from the key itself (OKP Ed25519 -> EdDSA, EC P-256 -> ES256,
    P-521 -> ES512, RSA -> RS256 or PS256). An algorithm the JWK or the row declares
    (its "alg", where the version stores one) narrows that to one, and must belong to
    it. Never a shared-secret ("oct") key, so never HS256 with a public key.
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


class VerifiedTokenCache:
    """Tokens that verified recently, so a client's next requests skip the signature check.

    A client sends the same JWT for its whole lifetime, and the signature check is most
    of a verification's cost (the largest single item of a small request). A hit is
    only served while the token is unexpired (same leeway) and verifies with the very
    key object the key cache would use now, so a rotated, expired or removed key, or a
    changed secret, sends it back through the full verification. Bounded: the oldest
    entries make room.
    """

    def __init__(self, size: int = VERIFIED_TOKEN_CACHE_SIZE) -> None:
        self.size = size
        self._entries: dict[str, tuple[VerifiedToken, jwt.PyJWK | str, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> VerifiedToken | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        verified, key, kid = entry
        if time.time() > verified.claims["exp"] + LEEWAY_SECONDS:
            return None
        if verified.algorithm == SECRET_ALGORITHM:
            current: jwt.PyJWK | str | None = settings.BETTER_AUTH_SECRET
            if current != key:
                return None
        elif kid is None or (public_keys.get(kid) or {}).get(verified.algorithm) is not key:
            return None
        return verified

    def add(self, token: str, verified: VerifiedToken, key: jwt.PyJWK | str, kid: Any) -> None:
        with self._lock:
            while len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))  # oldest first
            self._entries[token] = (verified, key, kid if isinstance(kid, str) else None)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}


verified_tokens = VerifiedTokenCache()


def clear_key_cache() -> None:
    """Forget cached public keys and verified tokens (tests; the next verification re-reads)."""
    public_keys.clear()
    verified_tokens.clear()


@receiver(setting_changed)
def _clear_key_cache_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    # override_settings(BETTER_AUTH_JWKS_URL=...) must not be served keys of the old source.
    if setting.startswith("BETTER_AUTH_"):
        clear_key_cache()


def sign_session_token(token: str, secret: str) -> str:
    """Better Auth's session signature: base64(HMAC-SHA256(secret, token)), `=`-padded."""
    digest = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def session_token_from(value: str, *, require_signature: bool) -> str:
    """The session token in `token` or `token.signature` (URL-encoded or not).

    Cookies are always signed; a Bearer value may be the raw token, as Better
    Auth's bearer plugin allows.
    """
    if len(value) > MAX_SESSION_CREDENTIAL_LENGTH:
        raise TokenError("token too large")
    value = unquote(value)
    token, dot, signature = value.rpartition(".")
    if not dot:
        if require_signature:
            raise TokenError("session token is not signed")
        token = value
    elif not _session_signature_matches(token, signature):
        raise TokenError("invalid signature")
    if not token or len(token) > MAX_ID_LENGTH or not _printable(token):
        raise TokenError("malformed session token")
    return token


def _session_signature_matches(token: str, signature: str) -> bool:
    secret = settings.BETTER_AUTH_SECRET
    if not secret or not token:
        return False
    # Better Auth writes standard padded base64; its bearer plugin also tolerates the
    # url-safe alphabet and missing padding, so both decode to the same 32 bytes here.
    unpadded = signature.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        given = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)
