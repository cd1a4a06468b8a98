"""Sign credentials the way Better Auth does, for tests of any suite (tasks, bench, MCP).

    key = create_signing_key("EdDSA")          # key pair + its jwks row, as Better Auth stores it
    client.credentials(HTTP_AUTHORIZATION=bearer_for(user, key))

`bearer_for(user)` without a key signs an HS256 app token with BETTER_AUTH_SECRET
(no jwks row needed); the `signing_key` and `jwt_client` fixtures in
tests/conftest.py give the Better Auth (EdDSA) variant.
"""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.jwts import clear_key_cache
from accounts.models import Session, User
from accounts.sessions import sign_session_token
from tests.factories import better_auth_id

ALGORITHMS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")
DEFAULT_ISSUER = "http://localhost:3000"  # Better Auth's base URL when settings don't name one
BETTER_AUTH_JWT_LIFETIME = 15 * 60
_PUBLIC_JWK_MEMBERS = ("kty", "crv", "x", "y", "n", "e")  # what jose's exportJWK writes


def generate_private_key(algorithm: str) -> Any:
    """A fresh private key of the kind Better Auth generates for `algorithm`."""
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ES512":
        return ec.generate_private_key(ec.SECP521R1())
    if algorithm in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {algorithm}")


def public_jwk(private_key: Any, algorithm: str) -> dict[str, str]:
    """The public JWK as Better Auth stores it in jwks."publicKey" (no alg, no kid)."""
    full = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(private_key.public_key()))
    return {name: full[name] for name in _PUBLIC_JWK_MEMBERS if name in full}


@dataclass
class SigningKey:
    """A Better Auth signing key: `sign()` makes tokens the jwks table can verify."""

    kid: str
    algorithm: str
    private_key: Any

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        # Better Auth's header is exactly {"alg", "kid"}: no "typ".
        return jwt.encode(
            claims,
            self.private_key,
            algorithm=self.algorithm,
            headers={"kid": self.kid, "typ": None, **(headers or {})},
        )

    def token_for(self, user: User, **overrides: Any) -> str:
        return self.sign(better_auth_claims(user, **overrides))


def insert_jwks_row(kid: str, public_key: str, **columns: Any) -> None:
    """A jwks row as Better Auth writes it; `columns` may name the optional ones
    (`expiresAt`, `alg`, `crv`), which the Jwk model does not map."""
    row = {
        "id": kid,
        "publicKey": public_key,
        # Better Auth stores the private JWK encrypted with its secret; never read here.
        "privateKey": json.dumps({"ciphertext": "not-used-by-this-service", "iv": "", "tag": ""}),
        "createdAt": timezone.now(),
        **columns,
    }
    names = ", ".join(f'"{name}"' for name in row)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO jwks ({names}) VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )


def store_public_key(
    kid: str, private_key: Any, algorithm: str, *, expires_at: Any = None, alg_column: bool = True
) -> None:
    """Insert the jwks row Better Auth (1.7) would write for this key pair."""
    public = public_jwk(private_key, algorithm)
    insert_jwks_row(
        kid,
        json.dumps(public),
        expiresAt=expires_at,
        alg=algorithm if alg_column else None,
        crv=public.get("crv") if algorithm == "EdDSA" else None,
    )


def create_signing_key(
    algorithm: str = "EdDSA", *, kid: str | None = None, **row: Any
) -> SigningKey:
    """A new key pair stored in the jwks table; the key cache is cleared so it is seen at once."""
    kid = kid or better_auth_id()
    private_key = generate_private_key(algorithm)
    store_public_key(kid, private_key, algorithm, **row)
    clear_key_cache()
    return SigningKey(kid=kid, algorithm=algorithm, private_key=private_key)


def better_auth_claims(user: User, *, lifetime: int = BETTER_AUTH_JWT_LIFETIME, **overrides: Any):
    """The payload Better Auth's jwt plugin signs: the user row plus iat, exp, iss, aud, sub."""
    now = int(time.time())
    issuer = settings.BETTER_AUTH_ISSUER or DEFAULT_ISSUER
    claims = {
        "iat": now,
        "name": user.name,
        "email": user.email,
        "emailVerified": user.email_verified,
        "image": user.image,
        "createdAt": _iso(user.created_at),
        "updatedAt": _iso(user.updated_at),
        "id": user.id,
        "sub": user.id,
        "exp": now + lifetime,
        "iss": issuer,
        "aud": settings.BETTER_AUTH_AUDIENCE or issuer,
    }
    claims.update(overrides)
    return claims


def app_token(
    user_id: str, *, secret: str | None = None, lifetime: int = 3600, **overrides: Any
) -> str:
    """An HS256 token as a Next.js app signs one for its backend: `sub` + `exp`, the secret."""
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + lifetime}
    if settings.BETTER_AUTH_URL:  # then app tokens must name the deployment, as Better Auth's do
        claims |= {"iss": settings.BETTER_AUTH_ISSUER, "aud": settings.BETTER_AUTH_AUDIENCE}
    claims.update(overrides)
    return jwt.encode(claims, secret or settings.BETTER_AUTH_SECRET, algorithm="HS256")


def bearer_for(user: User, key: SigningKey | None = None) -> str:
    """An `Authorization` header value: a Better Auth JWT signed with `key`, else an HS256 token."""
    token = key.token_for(user) if key else app_token(user.id)
    return f"Bearer {token}"


def signed_session_token(token: str, secret: str | None = None) -> str:
    """`token.signature`: the `set-auth-token` header value."""
    return f"{token}.{sign_session_token(token, secret or settings.BETTER_AUTH_SECRET)}"


def session_cookie_value(session: Session, secret: str | None = None) -> str:
    """The better-auth.session_token cookie value as a browser sends it (URL-encoded)."""
    return quote(signed_session_token(session.token, secret), safe="")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, for what PyJWT refuses to sign (`alg: none`, ...)."""
    segments = [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode())]
    return ".".join([*segments, b64url(signature)])


def hs256_signed_with(key: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """An HS256 token signed with any bytes, e.g. a public key (algorithm confusion)."""
    signing_input = forge(header, payload).rsplit(".", 1)[0]
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def _iso(moment: Any) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
