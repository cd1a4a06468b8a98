"""DRF throttle: writes per authenticated user (settings.RATE_LIMIT_WRITES)."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from ratelimit.limits import write_retry_after


class WriteRateThrottle(BaseThrottle):
    """Unsafe requests (POST, PUT, PATCH, DELETE) per user, shared by every worker, and
    with the MCP write tools (ratelimit.limits.charge_write counts the same key).

    It runs after authentication and permissions, so refused requests (401, 403)
    never use up a user's writes. Over the limit: 429 RATE_LIMITED with Retry-After.
    """

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS or not request.user.is_authenticated:
            return True
        # A view may count a request as several writes (a batch: one per operation).
        cost = view.write_cost(request) if hasattr(view, "write_cost") else 1
        self.retry_after = write_retry_after(user=request.user, cost=cost)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after
