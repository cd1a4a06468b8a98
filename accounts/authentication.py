"""DRF authentication with Better Auth's credentials (verified by accounts/jwts.py and sessions.py).

Both classes follow DRF's contract: None when the request does not use their
scheme, AuthenticationFailed (401, `WWW-Authenticate: Bearer`) when it does but
the credential is wrong.
"""

from contextlib import suppress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from accounts import jwts, sessions
from accounts.credentials import TokenError
from accounts.models import Session, User

# Better Auth names the cookie `__Secure-` + name on https.
SESSION_COOKIE_NAMES = ("__Secure-better-auth.session_token", "better-auth.session_token")
MAX_AUTHORIZATION_HEADER_LENGTH = jwts.MAX_TOKEN_LENGTH + 64
MALFORMED_HEADER = "invalid Authorization header: expected 'Bearer <token>'"


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`; None when another scheme or none is used."""
    header = get_authorization_header(request)
    parts = header.split(None, 1)
    if not parts or parts[0].lower() != b"bearer":
        return None
    if len(header) > MAX_AUTHORIZATION_HEADER_LENGTH:
        raise AuthenticationFailed("token too large")
    parts = header.split()
    if len(parts) != 2:
        raise AuthenticationFailed(MALFORMED_HEADER)
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed(MALFORMED_HEADER) from None


class BetterAuthJWTAuthentication(BaseAuthentication):
    """`Authorization: Bearer <jwt>`: a Better Auth JWT, or an HS256 JWT signed with the secret.

    Bearer values that are not JWTs (session tokens) are left to
    BetterAuthSessionAuthentication; a JWT that fails here is never retried as one.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, jwts.Claims] | None:
        token = bearer_token(request)
        if token is None or not jwts.looks_like_jwt(token):
            return None
        try:
            verified = jwts.verify_jwt(token)
        except TokenError as error:
            raise AuthenticationFailed(str(error)) from None
        user = User.objects.by_id(verified.user_id)  # the one query of this path
        if user is None:
            raise AuthenticationFailed("user not found")
        return user, verified.claims

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BetterAuthSessionAuthentication(BaseAuthentication):
    """A Better Auth session: `Bearer <token>` / `Bearer <token>.<signature>`, or its cookie.

    Cookie-authenticated unsafe requests must come from a trusted origin: a browser
    sends the cookie with cross-site requests too (CSRF). Bearer needs no such check.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, Session] | None:
        token = bearer_token(request)
        if token is not None:
            if jwts.looks_like_jwt(token):
                return None  # BetterAuthJWTAuthentication's, whatever its verdict
            return self._session_user(_session_token(token, require_signature=False))
        cookie = _session_cookie(request)
        if cookie is None:
            return None
        session_token = _session_token(cookie, require_signature=True)
        _enforce_trusted_origin(request)
        return self._session_user(session_token)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

    def _session_user(self, token: str) -> tuple[User, Session]:
        try:
            session = Session.objects.select_related("user").get(token=token)  # one query
        except Session.DoesNotExist:
            raise AuthenticationFailed("session not found") from None  # signed out, or never was
        if session.expires_at <= timezone.now():
            raise AuthenticationFailed("session expired")
        return session.user, session


def _session_token(value: str, *, require_signature: bool) -> str:
    try:
        return sessions.session_token_from(value, require_signature=require_signature)
    except TokenError as error:
        raise AuthenticationFailed(str(error)) from None


def _session_cookie(request: Request) -> str | None:
    for name in SESSION_COOKIE_NAMES:
        if value := request.COOKIES.get(name):
            return value
    return None


def _enforce_trusted_origin(request: Request) -> None:
    """Refuse cookie-authenticated writes whose Origin (or Referer) is not trusted."""
    if request.method in SAFE_METHODS:
        return
    source = request.headers.get("Origin") or request.headers.get("Referer")
    origin = _origin(source) if source else ""
    if not origin or origin not in _trusted_origins(request):
        raise PermissionDenied("CSRF failed: untrusted origin")


def _trusted_origins(request: Request) -> set[str]:
    configured = [
        *settings.CORS_ALLOWED_ORIGINS,
        *settings.BETTER_AUTH_TRUSTED_ORIGINS,
        *settings.CSRF_TRUSTED_ORIGINS,
        settings.BETTER_AUTH_URL,
    ]
    origins = {_origin(origin) for origin in configured if origin}
    with suppress(DisallowedHost):
        origins.add(_origin(f"{request.scheme}://{request.get_host()}"))  # same origin
    origins.discard("")
    return origins


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""
