"""Verify Better Auth credentials with plain functions (no DRF: authentication.py maps errors).

What is accepted mirrors what a real Better Auth 1.7 server issues (measured; the
real token, keys and session are in tests/accounts/vectors.json):

- JWTs of its `jwt` plugin: EdDSA (Ed25519) by default, or ES256, ES512, RS256,
  PS256; header `kid` = `jwks.id`, the public JWK stored as JSON text in
  `jwks."publicKey"`; `iss` and `aud` are the app's base URL; 15-minute lifetime.
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
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import jwt
from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

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
# An unknown kid re-reads the keys at most this often, so random kids cannot hammer the database.
KEY_REFRESH_INTERVAL_SECONDS = 10.0
KEY_CACHE_TTL_SECONDS = 300.0  # known keys are re-read this often, so deleted keys stop verifying
KEY_GRACE_PERIOD = timedelta(days=30)  # Better Auth keeps serving a rotated key this long
JWKS_FETCH_TIMEOUT_SECONDS = 3.0
VERIFIED_TOKEN_CACHE_SIZE = 2048  # per process; an entry is one token and its claims (~1 KB)
ASYMMETRIC_KEY_TYPES = frozenset({"OKP", "EC", "RSA"})
PUBLIC_JWK_MEMBERS = frozenset({"kty", "crv", "x", "y", "n", "e", "alg", "kid", "use"})
APP_TOKEN_SUBJECT_CLAIMS = ("sub", "id", "user_id", "userId")
NUMBER = (int, float)  # a finite JSON number: NaN/Infinity never parse, 1e999 is refused
CLAIM_TYPES = {"exp": NUMBER, "nbf": NUMBER, "iat": NUMBER, "sub": str, "jti": str}
JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")  # unpadded base64url


class TokenError(Exception):
    """A credential failed verification; the message is specific but safe to return."""


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
        public_key = public_keys.get(kid)
        if public_key is None:
            raise TokenError("unknown key id")
        key = public_key  # a PyJWK: PyJWT only verifies it with the key's own algorithm
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
    KEY_REFRESH_INTERVAL_SECONDS; all keys are re-read every KEY_CACHE_TTL_SECONDS.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def get(self, kid: str) -> jwt.PyJWK | None:
        if self._older_than(KEY_CACHE_TTL_SECONDS):
            self._refresh(KEY_CACHE_TTL_SECONDS)
        key = self._keys.get(kid)
        if key is None and self._older_than(KEY_REFRESH_INTERVAL_SECONDS):
            self._refresh(KEY_REFRESH_INTERVAL_SECONDS)
            key = self._keys.get(kid)
        return key

    def clear(self) -> None:
        with self._lock:
            self._keys, self._loaded_at = {}, None

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


def load_public_keys() -> dict[str, jwt.PyJWK] | None:
    """All usable public keys by kid, from the JWKS URL when one is set, else the jwks table."""
    url = jwks_url()
    return _keys_from_url(url) if url else _keys_from_database()


def jwks_url() -> str:
    """BETTER_AUTH_JWKS_URL; `auto` derives Better Auth's endpoint from BETTER_AUTH_URL."""
    url = settings.BETTER_AUTH_JWKS_URL
    if url == "auto":
        return f"{settings.BETTER_AUTH_URL}/api/auth/jwks" if settings.BETTER_AUTH_URL else ""
    return url


def _keys_from_database() -> dict[str, jwt.PyJWK]:
    # Like Better Auth's /jwks endpoint: keys expired beyond the grace period are gone.
    # Only the public columns are read: "privateKey" never leaves the database.
    cutoff = timezone.now() - KEY_GRACE_PERIOD
    rows = Jwk.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=cutoff))
    keys = {}
    for kid, public_key, alg in rows.values_list("id", "public_key", "alg"):
        try:
            jwk_data = json.loads(public_key)
        except ValueError:
            logger.warning("jwks row %s: publicKey is not JSON; skipped", kid)
            continue
        if (key := _public_key(kid, jwk_data, alg)) is not None:
            keys[kid] = key
    return keys


def _keys_from_url(url: str) -> dict[str, jwt.PyJWK] | None:
    try:
        client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=JWKS_FETCH_TIMEOUT_SECONDS)
        data = client.fetch_data()
    except (jwt.PyJWKClientError, ValueError) as error:
        logger.warning("could not fetch Better Auth's JWKS from %s: %s", url, error)
        return None  # keep the keys already cached
    keys = {}
    for jwk_data in data.get("keys") if isinstance(data.get("keys"), list) else []:
        kid = jwk_data.get("kid") if isinstance(jwk_data, dict) else None
        if isinstance(kid, str) and (key := _public_key(kid, jwk_data, None)) is not None:
            keys[kid] = key
    return keys


def _public_key(kid: str, jwk_data: Any, alg: str | None) -> jwt.PyJWK | None:
    """A verification key bound to one asymmetric algorithm, or None (logged) if unusable."""
    if not isinstance(jwk_data, dict):
        logger.warning("key %s: not a JWK object; skipped", kid)
        return None
    public = {name: value for name, value in jwk_data.items() if name in PUBLIC_JWK_MEMBERS}
    if public.get("kty") not in ASYMMETRIC_KEY_TYPES:  # never a shared-secret ("oct") key
        logger.warning("key %s: key type %r not allowed; skipped", kid, public.get("kty"))
        return None
    # Better Auth's own precedence: the JWK's alg, then the row's; else inferred from kty/crv.
    algorithm = public.get("alg") or alg or None
    try:
        key = jwt.PyJWK(public, algorithm)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as error:
        logger.warning("key %s: unusable JWK (%r); skipped", kid, error)
        return None
    if key.algorithm_name not in ASYMMETRIC_ALGORITHMS:
        logger.warning("key %s: algorithm %s not allowed; skipped", kid, key.algorithm_name)
        return None
    return key


public_keys = PublicKeyCache()


class VerifiedTokenCache:
    """Tokens that verified recently, so a client's next requests skip the signature check.

    A client sends the same JWT for its whole lifetime, and the Ed25519 check is most
    of a verification's cost (about 0.1 ms, the largest single item of a small
    request). A hit is only served while the token is unexpired (same leeway) and
    verifies with the very key object the key cache would use now, so a rotated,
    expired or removed key, or a changed secret, sends it back through the full
    verification. Bounded: the oldest entries make room.
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
        elif kid is None or public_keys.get(kid) is not key:
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
