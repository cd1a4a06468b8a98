"""Better Auth session tokens: raw, or signed as `token.base64(HMAC-SHA256)`.

`session.token` is what the `set-auth-token` header (bearer plugin) and the session
cookie carry, signed with BETTER_AUTH_SECRET the way better-call signs cookies.
Hand-written: no Python library implements better-call's cookie signature.
"""

import base64
import binascii
import hashlib
import hmac
from urllib.parse import unquote

from django.conf import settings

from accounts.credentials import TokenError, is_id

MAX_SESSION_CREDENTIAL_LENGTH = 1024  # token + "." + 44-character signature, maybe URL-encoded


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
    if not is_id(token):
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
