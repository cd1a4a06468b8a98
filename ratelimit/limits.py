"""Fixed-window rate limits counted in the database, shared by every worker and host.

A rate is DRF's notation, `<count>/<second|minute|hour|day>`; an empty value or a
zero count disables it. Windows are aligned to the clock (a minute window ends on
the minute), so a client may get up to twice the count across a boundary.
"""

import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PURGE_INTERVAL_SECONDS = 300.0

# One statement: insert the key, or count one more hit in its window, or restart it.
UPSERT = """
INSERT INTO rate_limit_counter AS counter (key, window_end, hits) VALUES (%s, %s, %s)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN counter.window_end = excluded.window_end
        THEN counter.hits + excluded.hits ELSE excluded.hits END,
    window_end = excluded.window_end
RETURNING hits
"""


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    period: int  # seconds


@lru_cache(maxsize=16)
def parse_rate(text: str | None) -> Rate | None:
    """`"600/minute"` -> Rate(600, 60); None when empty or zero (the limit is off)."""
    if not text or not text.strip():
        return None
    count, _, period = text.strip().partition("/")
    seconds = PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"invalid rate {text!r}: expected '<count>/<second|minute|hour|day>'")
    return Rate(int(count), seconds) if int(count) else None


def hit(key: str, rate: Rate, now: float | None = None, cost: int = 1) -> int | None:
    """Count `cost` hits of `key`: None while within `rate`, else the seconds until it resets."""
    now = time.time() if now is None else now
    window_end = (math.floor(now) // rate.period + 1) * rate.period
    with connection.cursor() as cursor:
        cursor.execute(UPSERT, [key, window_end, cost])
        (hits,) = cursor.fetchone()
    _purge_now_and_then(now)
    return None if hits <= rate.count else max(1, math.ceil(window_end - now))


def purge_expired(now: float | None = None) -> int:
    """Delete counters whose window is over; returns how many."""
    from ratelimit.models import RateLimitCounter

    now = time.time() if now is None else now
    deleted, _ = RateLimitCounter.objects.filter(window_end__lte=math.floor(now)).delete()
    return deleted


_next_purge = 0.0


def _purge_now_and_then(now: float) -> None:
    """Each process purges at most every PURGE_INTERVAL_SECONDS: one indexed DELETE."""
    global _next_purge
    if now < _next_purge:
        return
    _next_purge = now + PURGE_INTERVAL_SECONDS
    try:
        with transaction.atomic():  # a failure must not break an enclosing transaction
            purge_expired(now)
    except DatabaseError as error:
        logger.warning("rate limit purge failed: %s", type(error).__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For per REST_FRAMEWORK NUM_PROXIES."""
    return BaseThrottle().get_ident(request) or "unknown"
