"""Rate limit of failed authentications per client (settings.RATE_LIMIT_AUTH_FAILURES).

A client over the limit gets 429 instead of 401 for every credential that fails, until
its window ends. Credentials that verify are always served: many users can share one
address (NAT, a proxy without RATE_LIMIT_NUM_PROXIES), and one of them failing must not
lock out the others. Health probes carry no credentials and are never limited.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.errors import error_body
from ratelimit.limits import client_ip, hit, notice_forwarded_for_ignored, parse_rate

logger = logging.getLogger(__name__)

SESSION_COOKIES = ("better-auth.session_token", "__Secure-better-auth.session_token")
MAX_BLOCKED_CLIENTS = 10_000
NEVER_LIMITED_PATHS = ("/health",)
# The MCP app counts its own failures below the transport (mcp_server/auth.py), mounted
# here or run alone; counting its 401s here too would charge each bad token twice.
COUNTED_ELSEWHERE = ("/mcp",)

# Clients over the limit, until their window ends. Each process learns it from the shared
# count on its own next failure from that client; a blocked client's further failures
# then cost no query.
_blocked: dict[str, float] = {}
_lock = threading.Lock()


def auth_failure(client: str) -> int | None:
    """Count a failed authentication of `client` (a ratelimit.limits.client_key).

    Returns the Retry-After seconds once the client is over RATE_LIMIT_AUTH_FAILURES
    (the failure should then be answered with 429), else None. REST's middleware and
    the MCP transport both call this: one counter per client across them. A database
    outage skips the count rather than turning a 401 into a 500.
    """
    rate = parse_rate(settings.RATE_LIMIT_AUTH_FAILURES)
    if rate is None:
        return None
    now = time.time()
    until = _blocked.get(client)
    if until is not None and until > now:
        return max(1, round(until - now))
    try:
        retry_after = hit(f"auth-failure:{client}", rate)
    except DatabaseError as error:  # an outage: the 401 stands, uncounted
        logger.warning("could not count an authentication failure: %s", type(error).__name__)
        return None
    if retry_after is not None:
        with _lock:
            if len(_blocked) >= MAX_BLOCKED_CLIENTS:
                _forget_expired(now)
            _blocked[client] = now + retry_after
    return retry_after


def reset() -> None:
    """Forget this process's blocks (tests)."""
    with _lock:
        _blocked.clear()


def _forget_expired(now: float) -> None:
    for client in [client for client, until in _blocked.items() if until <= now]:
        del _blocked[client]
    if len(_blocked) >= MAX_BLOCKED_CLIENTS:  # all still blocked: an attack from many clients
        _blocked.clear()


def _has_credentials(request: HttpRequest) -> bool:
    return "HTTP_AUTHORIZATION" in request.META or any(
        c in request.COOKIES for c in SESSION_COOKIES
    )


def auth_rate_limited(retry_after: int) -> dict:
    return error_body(
        429, f"Too many failed authentications; retry in {retry_after} seconds.",
        {"retry_after": retry_after},
    )  # fmt: skip


def rate_limited(retry_after: int) -> JsonResponse:
    response = JsonResponse(auth_rate_limited(retry_after), status=429)
    response["Retry-After"] = str(retry_after)
    return response


class AuthFailureRateLimitMiddleware:
    """A 401 for presented credentials counts against the client; over the limit it
    becomes a 429 with Retry-After.

    DRF throttles run after authentication and only for successful ones, so they
    cannot see a failing credential; this wraps the whole request instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_X_FORWARDED_FOR" in request.META and not settings.RATE_LIMIT_NUM_PROXIES:
            notice_forwarded_for_ignored()  # once per process: a proxy nobody told us about
        response = self.get_response(request)
        if response.status_code != 401 or not _has_credentials(request):
            return response
        if request.path.startswith(NEVER_LIMITED_PATHS + COUNTED_ELSEWHERE):
            return response
        retry_after = auth_failure(client_ip(request))
        return response if retry_after is None else rate_limited(retry_after)
