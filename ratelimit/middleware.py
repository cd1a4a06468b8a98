"""Rate limit of authentication failures per client IP (settings.RATE_LIMIT_AUTH_FAILURES)."""

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.errors import error_body
from ratelimit.limits import client_ip, hit, parse_rate

logger = logging.getLogger(__name__)

SESSION_COOKIES = ("better-auth.session_token", "__Secure-better-auth.session_token")
MAX_BLOCKED_IPS = 10_000

# IPs over the limit, until their window ends. Each process learns it from the shared
# count on its own next failure from that IP, so no request pays a query to check.
_blocked: dict[str, float] = {}
_lock = threading.Lock()


def record_auth_failure(request: HttpRequest) -> int | None:
    """Count a failed authentication of the request's client IP.

    Returns the Retry-After seconds once the IP is over the limit (and remembers the
    block in this process), else None. The authentication classes may call this
    directly; AuthFailureRateLimitMiddleware calls it for every 401 with credentials.
    A database outage skips the count rather than turning a 401 into a 500.
    """
    rate = parse_rate(settings.RATE_LIMIT_AUTH_FAILURES)
    if rate is None:
        return None
    ip = client_ip(request)
    try:
        retry_after = hit(f"auth-failure:{ip}", rate)
    except DatabaseError as error:  # an outage: the 401 stands, uncounted
        logger.warning("could not count an authentication failure: %s", type(error).__name__)
        return None
    if retry_after is not None:
        with _lock:
            if len(_blocked) >= MAX_BLOCKED_IPS:
                _forget_expired(time.time())
            _blocked[ip] = time.time() + retry_after
    return retry_after


def blocked_for(request: HttpRequest) -> int | None:
    """Seconds the request's IP stays blocked in this process, or None."""
    if not _blocked or parse_rate(settings.RATE_LIMIT_AUTH_FAILURES) is None:
        return None
    until = _blocked.get(client_ip(request))
    if until is None:
        return None
    remaining = until - time.time()
    return max(1, round(remaining)) if remaining > 0 else None


def reset() -> None:
    """Forget this process's blocks (tests)."""
    with _lock:
        _blocked.clear()


def _forget_expired(now: float) -> None:
    for ip in [ip for ip, until in _blocked.items() if until <= now]:
        del _blocked[ip]
    if len(_blocked) >= MAX_BLOCKED_IPS:  # all still blocked: an attack from many IPs
        _blocked.clear()


def _has_credentials(request: HttpRequest) -> bool:
    return "HTTP_AUTHORIZATION" in request.META or any(
        c in request.COOKIES for c in SESSION_COOKIES
    )


def rate_limited(retry_after: int) -> JsonResponse:
    message = f"Too many failed authentications; retry in {retry_after} seconds."
    response = JsonResponse(error_body(429, message), status=429)
    response["Retry-After"] = str(retry_after)
    return response


class AuthFailureRateLimitMiddleware:
    """Over RATE_LIMIT_AUTH_FAILURES 401s (with credentials) from one IP: 429 until the window
    ends, before any credential is verified.

    DRF throttles run after authentication, so they can neither see nor stop a
    failing credential; this wraps the whole request instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (retry_after := blocked_for(request)) is not None:
            return rate_limited(retry_after)
        response = self.get_response(request)
        if response.status_code != 401 or not _has_credentials(request):
            return response
        retry_after = record_auth_failure(request)
        return response if retry_after is None else rate_limited(retry_after)
