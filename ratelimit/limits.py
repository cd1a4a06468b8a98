"""Fixed-window rate limits counted in the database, shared by every worker and host.

A rate is DRF's notation, `<count>/<second|minute|hour|day>`; an empty value or a
zero count disables it. Windows are aligned to the clock (a minute window ends on
the minute), so a client may get up to twice the count across a boundary.
"""

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest
from rest_framework.exceptions import Throttled

from config.sql import prepared_cursor

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
    with prepared_cursor(connection.alias) as cursor:
        cursor.execute(UPSERT, [key, window_end, cost])
        (hits,) = cursor.fetchone()
    _purge_now_and_then(now)
    return None if hits <= rate.count else max(1, math.ceil(window_end - now))


def peek(key: str, rate: Rate, now: float | None = None) -> tuple[int, int]:
    """Hits of `key` in the current window and the seconds until it ends, counting none."""
    now = time.time() if now is None else now
    window_end = (math.floor(now) // rate.period + 1) * rate.period
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT hits FROM rate_limit_counter WHERE key = %s AND window_end = %s",
            [key, window_end],
        )
        row = cursor.fetchone()
    return (row[0] if row else 0), max(1, math.ceil(window_end - now))


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


class RateLimited(Throttled):
    """429 RATE_LIMITED with Retry-After (DRF's exception handler sets the header)."""

    def __init__(self, retry_after: int, what: str) -> None:
        super().__init__(wait=retry_after, detail=f"{what}; retry in {retry_after} seconds.")
        self.retry_after = retry_after
        self.details = {"retry_after": retry_after}


# Services: what every transport (REST, MCP over HTTP or stdio, batch endpoints) calls.


def charge_write(*, user: Any, cost: int = 1) -> None:
    """Count `cost` writes by `user` against RATE_LIMIT_WRITES; RateLimited when over it.

    The REST throttle and the MCP write tools both call this, so both share one
    counter per user.
    """
    if (retry_after := write_retry_after(user=user, cost=cost)) is not None:
        raise RateLimited(retry_after, "Too many writes")


def write_retry_after(*, user: Any, cost: int = 1) -> int | None:
    """Count `cost` writes by `user`: None while within RATE_LIMIT_WRITES, else the
    Retry-After (a batch costs one per operation)."""
    rate = parse_rate(settings.RATE_LIMIT_WRITES)
    return None if rate is None else hit(f"write:{user.pk}", rate, cost=cost)


def client_key(remote_addr: str | None, forwarded_for: str | None) -> str:
    """Who a request comes from, for per-client limits: an IPv4 address or an IPv6 /64.

    The socket's address, or with RATE_LIMIT_NUM_PROXIES = n > 0 the n-th address from
    the right of X-Forwarded-For (what the outermost trusted proxy saw), as DRF's
    NUM_PROXIES does. A whole IPv6 /64 is one client: a single host usually owns one
    and can pick any address in it.
    """
    num_proxies = settings.RATE_LIMIT_NUM_PROXIES
    address = remote_addr or ""
    if forwarded_for:
        if num_proxies > 0:
            hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
            if hops:
                address = hops[-min(num_proxies, len(hops))]
        else:
            notice_forwarded_for_ignored()
    return _normalized(address)


@lru_cache(maxsize=4096)
def _normalized(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").partition("%")[0])
    except ValueError:
        return address[:64] or "unknown"  # not an IP (a unix socket): one shared client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_ip(request: HttpRequest) -> str:
    """client_key of a Django request."""
    meta = request.META
    return client_key(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))


# X-Forwarded-For while RATE_LIMIT_NUM_PROXIES=0: a proxy is probably in front, and then
# every client shares the proxy's address (and its limits). A system check cannot see
# requests, so the first such request of each process logs a warning and leaves a
# marker row that `manage.py check --deploy` reads (ratelimit.checks).
FORWARDED_FOR_NOTICE_KEY = "notice:x-forwarded-for-ignored"
FORWARDED_FOR_NOTICE_SECONDS = 30 * 86400
_forwarded_for_noticed = False


def notice_forwarded_for_ignored() -> None:
    global _forwarded_for_noticed
    if _forwarded_for_noticed:
        return
    _forwarded_for_noticed = True
    logger.warning(
        "X-Forwarded-For arrived but RATE_LIMIT_NUM_PROXIES=0: it is ignored and every "
        "client behind that proxy shares its address for rate limits. Behind a reverse "
        "proxy, set RATE_LIMIT_NUM_PROXIES to the number of proxies in front."
    )
    until = int(time.time()) + FORWARDED_FOR_NOTICE_SECONDS
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO rate_limit_counter (key, window_end, hits) VALUES (%s, %s, 1) "
                "ON CONFLICT (key) DO UPDATE SET window_end = excluded.window_end",
                [FORWARDED_FOR_NOTICE_KEY, until],
            )
    except DatabaseError as error:
        logger.warning("could not record the X-Forwarded-For notice: %s", type(error).__name__)


def forwarded_for_seen_at() -> float | None:
    """When X-Forwarded-For last arrived while ignored (within 30 days), or None."""
    from ratelimit.models import RateLimitCounter

    row = RateLimitCounter.objects.filter(key=FORWARDED_FOR_NOTICE_KEY).first()
    return None if row is None else row.window_end - FORWARDED_FOR_NOTICE_SECONDS


def reset_notices() -> None:
    """Forget this process's notices (tests)."""
    global _forwarded_for_noticed
    _forwarded_for_noticed = False
