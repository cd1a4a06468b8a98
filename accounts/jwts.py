"""Verify Better Auth JWTs and HS256 app tokens (no DRF: authentication.py maps errors).

What is accepted mirrors what real Better Auth 1.3, 1.4 and 1.7 servers issue
(measured; one real token and key are in tests/accounts/vectors.json, and
tests/better_auth/ runs those servers):

- JWTs of its `jwt` plugin: EdDSA (Ed25519) by default, or ES256, ES512, RS256,
  PS256; header `kid` = `jwks.id` (accounts/keys.py); `iss` and `aud` are the app's
  base URL; 15-minute lifetime by default.
- HS256 JWTs signed with BETTER_AUTH_SECRET: Better Auth has no such mode, but
  many Next.js apps sign their own token for their backend this way.

PyJWT's `decode` checks the signature (with the key's one algorithm) and the
registered claims (required exp, nbf, iat, issuer, audience, with leeway). Before it,
cheap checks refuse oversized or misshapen tokens before any cryptography; around it
are only the rules PyJWT has no option for. Every failure is a TokenError whose
message is safe to show the client.
"""

import base64
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from accounts.credentials import TokenError, is_id
from accounts.keys import public_keys
from accounts.token_cache import VerifiedTokenCache

Claims = dict[str, Any]

# What Better Auth's jwt plugin can sign with; HS256 is only ever checked with the secret.
ASYMMETRIC_ALGORITHMS = frozenset({"EdDSA", "ES256", "ES512", "RS256", "PS256"})
SECRET_ALGORITHM = "HS256"

MAX_TOKEN_LENGTH = 8192  # a Better Auth JWT carries the user row: ~700 characters in practice
MAX_JWT_HEADER_LENGTH = 1024  # encoded; Better Auth's is 80 characters
LEEWAY_SECONDS = 30  # clock skew tolerated on exp, nbf and iat
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

# PyJWT's failures in this API's words (its own messages name its internals).
PYJWT_MESSAGES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidIssuerError, "invalid issuer"),
    (jwt.InvalidAudienceError, "invalid audience"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed for this key"),
    # Past the shape checks, PyJWT's other decode errors are segments no signer wrote
    # (non-canonical base64): the signature does not verify what was sent.
    (jwt.DecodeError, "invalid signature"),
)
MISSING_CLAIM_MESSAGES = {
    "exp": "token has no exp claim",
    "iss": "invalid issuer",
    "aud": "invalid audience",
}


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A JWT whose signature and claims checked out; `user_id` still has to exist."""

    user_id: str
    algorithm: str
    claims: Claims


verified_tokens: VerifiedTokenCache[VerifiedToken] = VerifiedTokenCache()


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three segments; session tokens (signed or not) have at most two."""
    return token.count(".") == 2


def verify_jwt(token: str) -> VerifiedToken:
    """Verify a Better Auth JWT (keys from the jwks table) or an HS256 app token."""
    cached = verified_tokens.get(token)
    if cached is not None:
        return cached
    header = _jwt_header(token)
    key = _key_for(header)
    app_token = isinstance(key, str)
    claims = _decode(token, key, app_token=app_token)
    if app_token:
        _check_lifetime(claims, settings.APP_TOKEN_MAX_LIFETIME_SECONDS)
    user_id = _subject(claims, APP_TOKEN_SUBJECT_CLAIMS if app_token else ("sub",))
    verified = VerifiedToken(user_id=user_id, algorithm=header["alg"], claims=claims)
    kid = None if app_token else header["kid"]
    verified_tokens.add(token, verified, key=key, kid=kid, until=claims["exp"] + LEEWAY_SECONDS)
    return verified


def _jwt_header(token: str) -> dict[str, Any]:
    """The decoded JOSE header, refusing oversized or misshapen input before any crypto.

    Hand-written: PyJWT bounds no size, and the header must be read before PyJWT runs
    to choose the key.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token too large")
    if not JWS_COMPACT.fullmatch(token):
        raise TokenError("malformed token")
    segment = token.partition(".")[0]
    if len(segment) > MAX_JWT_HEADER_LENGTH:
        raise TokenError("token header too large")
    try:
        header = _strict_json(_b64decode(segment))
    except (ValueError, RecursionError):  # binascii, Unicode and JSON errors are ValueErrors
        raise TokenError("malformed token") from None
    if not isinstance(header, dict):
        raise TokenError("malformed token")
    # Better Auth sets neither; PyJWT would honour b64=false (RFC 7797's detached payload).
    if "crit" in header or header.get("b64", True) is not True:
        raise TokenError("unsupported critical header")
    return header


def _key_for(header: dict[str, Any]) -> jwt.PyJWK | str:
    """The one key the header may name: a jwks key of the token's algorithm, or the secret.

    Hand-written: PyJWT verifies with the key it is given; choosing it is the caller's.
    """
    algorithm = header.get("alg")
    if algorithm == SECRET_ALGORITHM:
        if not settings.BETTER_AUTH_SECRET:
            raise TokenError("unsupported algorithm")
        return settings.BETTER_AUTH_SECRET  # never a public key: no algorithm confusion
    if not isinstance(algorithm, str) or algorithm not in ASYMMETRIC_ALGORITHMS:
        raise TokenError("unsupported algorithm")  # includes "none"
    kid = header.get("kid")
    if not isinstance(kid, str) or not is_id(kid) or (key_set := public_keys.get(kid)) is None:
        raise TokenError("unknown key id")
    if (key := key_set.get(algorithm)) is None:
        raise TokenError("algorithm not allowed for this key")
    return key  # a PyJWK bound to one algorithm of the key's own family


def _decode(token: str, key: jwt.PyJWK | str, *, app_token: bool) -> Claims:
    """The claims, once PyJWT has checked the signature, exp, nbf, iat, issuer, audience.

    Better Auth always sets iss and aud; app-signed HS256 tokens often omit them. So
    they are required on Better Auth's tokens, and on app tokens once BETTER_AUTH_URL
    is set; otherwise checked where present. An empty setting disables its check.
    """
    required = not app_token or bool(settings.BETTER_AUTH_URL)
    issuer = settings.BETTER_AUTH_ISSUER if required else ""
    audience = settings.BETTER_AUTH_AUDIENCE if required else ""
    try:
        claims = _strict_pyjwt.decode(
            token,
            key,
            algorithms=[SECRET_ALGORITHM if isinstance(key, str) else key.algorithm_name],
            issuer=issuer or None,
            audience=audience or None,
            leeway=LEEWAY_SECONDS,
            # Given no audience, PyJWT refuses every token that names one.
            options={"require": ["exp"], "verify_aud": bool(audience)},
        )
    except jwt.MissingRequiredClaimError as error:
        raise TokenError(MISSING_CLAIM_MESSAGES.get(error.claim, "malformed token")) from None
    except jwt.PyJWTError as error:
        message = next((text for kind, text in PYJWT_MESSAGES if isinstance(error, kind)), None)
        raise TokenError(message or "malformed token") from None
    if not required:
        _check_present_issuer_and_audience(claims)
    return claims


class _StrictPyJWT(jwt.PyJWT):
    """PyJWT reading the claims as strictly as `_jwt_header` reads the header."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        # PyJWT's hook for decoding the payload differently; it runs after the signature
        # check and before PyJWT's claim checks, which then see only well-typed claims.
        try:
            claims = _strict_json(decoded["payload"])
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            raise TokenError("malformed token") from None
        if not isinstance(claims, dict):
            raise TokenError("malformed token")
        _check_claim_types(claims)
        return claims


_strict_pyjwt = _StrictPyJWT()


def _b64decode(segment: str) -> bytes:
    """Unpadded base64url (the alphabet was checked by JWS_COMPACT)."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _strict_json(data: bytes) -> Any:
    """JSON in which an object with a name twice, NaN or Infinity is a ValueError.

    Hand-written because json.loads (PyJWT's) keeps the last of duplicate names: RFC 7515
    and 7519 allow refusing them, and refusing means no two parsers (Better Auth's, a
    proxy's, ours) can read different claims.
    """
    return json.loads(data, object_pairs_hook=_unique_members, parse_constant=_no_constant)


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity, which json.loads accepts


def _check_claim_types(claims: Claims) -> None:
    """RFC 7519's JSON types for the registered claims PyJWT reads.

    Hand-written because PyJWT int()s the time claims: "9999999999" and true pass its
    checks, and 1e999 (which json.loads makes inf) would overflow them.
    """
    for name, kinds in CLAIM_TYPES.items():
        if name not in claims:
            continue
        value = claims[name]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise TokenError(f"invalid {name} claim")
        if isinstance(value, float) and not math.isfinite(value):
            raise TokenError(f"invalid {name} claim")


def _check_present_issuer_and_audience(claims: Claims) -> None:
    """An app token's iss and aud where it has them: PyJWT's checks require them."""
    issuer, audience = settings.BETTER_AUTH_ISSUER, settings.BETTER_AUTH_AUDIENCE
    if issuer and "iss" in claims and claims["iss"] != issuer:
        raise TokenError("invalid issuer")
    if audience and "aud" in claims:
        aud = claims["aud"]
        if audience not in (aud if isinstance(aud, list) else [aud]):
            raise TokenError("invalid audience")


def _check_lifetime(claims: Claims, max_seconds: int) -> None:
    """`exp` at most `max_seconds` ahead (and after `iat`, when present): a leaked app
    token must not stay valid for ever. Hand-written: PyJWT has no maximum lifetime."""
    now = time.time()
    if claims["exp"] > now + max_seconds + LEEWAY_SECONDS:
        raise TokenError("token lifetime too long")
    if "iat" in claims and claims["exp"] - claims["iat"] > max_seconds + LEEWAY_SECONDS:
        raise TokenError("token lifetime too long")


def _subject(claims: Claims, names: tuple[str, ...]) -> str:
    """The first non-empty of `names`. Hand-written: app tokens name their user in claims
    other than `sub`, and the id must be one Better Auth could have made."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            if not is_id(value):
                raise TokenError("invalid subject")
            return value
    raise TokenError("token has no subject")


def clear_key_cache() -> None:
    """Forget cached public keys and verified tokens (tests; the next verification re-reads)."""
    public_keys.clear()
    verified_tokens.clear()


@receiver(setting_changed)
def _clear_verified_tokens_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    # A token verified under another issuer, audience or secret must be checked again.
    if setting.startswith("BETTER_AUTH_"):
        verified_tokens.clear()
