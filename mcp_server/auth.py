"""Who an MCP call acts for: the user of the REST API's own bearer credentials.

HTTP: BearerAuthMiddleware verifies `Authorization` on every request (401 with the
API's error body otherwise; failures count against the client exactly as REST's do,
429 over RATE_LIMIT_AUTH_FAILURES) and puts the user in the ASGI scope. stdio: the
command's token, re-verified on every call, so an expired token or a signed-out
session stops working there too. Tools never take a user from their arguments.
"""

from contextvars import ContextVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import HttpRequest
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.request import Request
from rest_framework.settings import api_settings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from accounts.models import User
from config.errors import api_error
from mcp_server.edge import send_json
from ratelimit.limits import client_key
from ratelimit.middleware import auth_failure, auth_rate_limited

# The stdio command's token (`manage.py mcp --token`); unset under HTTP.
stdio_token: ContextVar[str | None] = ContextVar("mcp_stdio_token", default=None)


def user_for_authorization(authorization: str) -> User:
    """The user an `Authorization` header value authenticates, decided as REST decides it.

    Runs REST_FRAMEWORK's authentication classes on a request carrying only this
    header: the same credentials (Better Auth JWT, HS256 app token, session token),
    the same checks and the same failure messages. Cookies are never consulted, so
    MCP needs no CSRF protection. Raises AuthenticationFailed or NotAuthenticated.
    """
    http_request = HttpRequest()
    http_request.META["HTTP_AUTHORIZATION"] = authorization
    request = Request(http_request)
    for authentication_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        # DRF's stubs type the setting as strings; api_settings imports the classes.
        result = authentication_class().authenticate(request)  # type: ignore[operator]
        if result is not None:
            return result[0]
    raise NotAuthenticated()


def user_for_token(token: str) -> User:
    return user_for_authorization(f"Bearer {token}")


def stdio_user() -> User:
    """The stdio command's user, verified now."""
    token = stdio_token.get()
    if token is None:
        raise NotAuthenticated()
    return user_for_token(token)


def _authenticate(authorization: str, scope: Scope) -> User | int:
    """The user, or raises the authentication error; an int: the client is over its limit
    of failures (the Retry-After seconds). Runs in a worker thread: it queries."""
    close_old_connections()
    try:
        try:
            return user_for_authorization(authorization)
        except (AuthenticationFailed, NotAuthenticated):
            if (retry_after := auth_failure(scope_client(scope))) is not None:
                return retry_after
            raise
    finally:
        close_old_connections()


def scope_client(scope: Scope) -> str:
    """ratelimit.limits.client_key of an ASGI request (the server must not rewrite the
    client from proxy headers itself: RATE_LIMIT_NUM_PROXIES decides)."""
    address = (scope.get("client") or ("", 0))[0]
    return client_key(address, Headers(scope=scope).get("x-forwarded-for"))


class BearerAuthMiddleware:
    """ASGI middleware: every HTTP request must carry valid REST API credentials."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization", "")
        try:
            if not authorization:
                raise NotAuthenticated()
            user = await sync_to_async(_authenticate, thread_sensitive=False)(authorization, scope)
        except Exception as error:
            status, body = api_error(error)
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
            return
        if isinstance(user, int):
            await send_json(send, 429, auth_rate_limited(user), {"Retry-After": str(user)})
            return
        scope["user"] = user
        await self.app(scope, receive, send)
